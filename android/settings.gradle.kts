// The sample app (app) and the platform-independent core it is built on (bundle-core, a plain
// Kotlin/JVM library that scripts/build-android-core.sh also compiles and tests off-device).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "EdgeExportParity"
include(":app", ":bundle-core")
