plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "com.example.bnndigits"
    compileSdk = 34

    defaultConfig {
        applicationId = "com.example.bnndigits"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1"
        ndk {
            // LCE's hand-optimized binary kernels exist for arm64-v8a only; its
            // AAR also ships x86 / x86_64, whose timings mean nothing for a phone.
            abiFilters += "arm64-v8a"
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    // Keep model.tflite uncompressed in the APK so Classifier.kt can memory-map
    // it with AssetManager.openFd (a compressed asset cannot be mapped).
    androidResources {
        noCompress += "tflite"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

dependencies {
    // TFLite with LCE's ops: the "LCE Lite" AAR, a replacement for the stock
    // org.tensorflow:tensorflow-lite AAR. It carries TFLite's whole Java API
    // (org.tensorflow.lite.Interpreter) and a JNI library whose op resolver
    // also registers LCE's custom ops (LceQuantize, LceBconv2d, ...).
    // Put lce-lite-*.aar into app/libs/ (built with LCE's
    // larq_compute_engine/tflite/java/build_lce_aar.sh, or taken from LCE's
    // GitHub release assets); see README.md.
    // Do NOT also depend on org.tensorflow:tensorflow-lite: duplicate classes,
    // and a stock runtime fails with "unresolved custom op" on LCE models.
    implementation(fileTree(mapOf("dir" to "libs", "include" to listOf("*.aar"))))
    // Route documented by LCE instead (after `mvn install:install-file ...
    // -DgroupId=org.larq -DartifactId=lce-lite -Dversion=0.1.000`, and
    // mavenLocal() in settings.gradle.kts):
    // implementation("org.larq:lce-lite:0.1.000")
}
