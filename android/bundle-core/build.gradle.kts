// Pure Kotlin/JVM: no Android API, so the same sources compile with plain kotlinc off-device.
// org.json is built into Android; here it is the same API repackaged, for compiling and tests.
plugins {
    id("org.jetbrains.kotlin.jvm")
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    compileOnly("com.vaadin.external.google:android-json:0.0.20131108.vaadin1")
    testImplementation("com.vaadin.external.google:android-json:0.0.20131108.vaadin1")
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // the shared vectors: a generated project carries a copy in src/test/vectors, the repository has tests/vectors
    val vectors = listOf(file("src/test/vectors"), rootProject.file("../tests/vectors")).first { it.isDirectory }
    systemProperty("edgeexport.vectors", vectors.absolutePath)
    filter {
        // needs -Dedgeexport.cases from tests/apps/test_android_core.py (real bundles + LiteRT outputs)
        excludeTestsMatching("io.edgeexport.bundle.BundleParityTest")
    }
}
