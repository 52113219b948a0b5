// Android Studio project of the keras-bnn-af digit demo (see README.md).
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
        // LCE's Android guide installs the AAR into Maven local instead of
        // app/libs; uncomment this if you follow that route (README.md).
        // mavenLocal()
    }
}

rootProject.name = "bnn-digits"
include(":app")
