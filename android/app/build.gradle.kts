// The sample app: the bundle in assets/bundle, LiteRT's Interpreter API with a chosen delegate.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "io.edgeexport.parity"
    compileSdk = 35

    defaultConfig {
        applicationId = "io.edgeexport.parity"
        minSdk = 27 // NNAPI 1.1 (Android 8.1), the lowest --android-api edgeexport targets
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    androidResources {
        // the model and parity tensors are read as they are stored
        noCompress += listOf("tflite", "bin")
    }
}

dependencies {
    implementation(project(":bundle-core"))
    implementation("com.google.ai.edge.litert:litert:1.4.0")
    implementation("com.google.ai.edge.litert:litert-gpu:1.4.0")
    implementation("com.google.ai.edge.litert:litert-gpu-api:1.4.0")
    implementation("androidx.activity:activity-ktx:1.9.3")

    androidTestImplementation("androidx.test:runner:1.6.2")
    androidTestImplementation("androidx.test.ext:junit:1.2.1")
}
