package com.example.bnndigits

import android.content.res.AssetManager
import org.json.JSONArray
import org.json.JSONObject
import kotlin.math.abs

/**
 * What the app assumes about the model, checked against the `model.json` that
 * android_demo/export_model.py writes next to `model.tflite`.
 *
 * The constants below are what this code was written for; tests/test_android_demo.py
 * checks them against a freshly exported contract. [load] refuses a contract
 * that disagrees, so a model exported for another input or scaling fails at
 * start-up with a message instead of giving wrong answers.
 */
class ModelContract private constructor(
    val modelAsset: String,
    val sha256: String,
    val outputKind: String,
    val labels: List<String>,
) {
    companion object {
        const val CONTRACT_ASSET = "model.json"
        const val MODEL_ASSET = "model.tflite"
        const val EXPECTED_FORMAT = 1
        const val INPUT_HEIGHT = 28
        const val INPUT_WIDTH = 28
        const val INPUT_CHANNELS = 1
        const val NUM_CLASSES = 10

        // keras_bnn_af.data.scale_images: x / 127.5 - 1 for a pixel x in 0..255.
        const val PIXEL_SCALE = 0.007843138f
        const val PIXEL_OFFSET = -1.0f

        // MNIST: white strokes (255) on a black background (0).
        const val BACKGROUND_PIXEL = 0
        const val FOREGROUND_PIXEL = 255

        private const val TOLERANCE = 1e-6

        /** Reads and checks [CONTRACT_ASSET]; throws [IllegalStateException]. */
        fun load(assets: AssetManager): ModelContract {
            val text = try {
                assets.open(CONTRACT_ASSET).bufferedReader().use { it.readText() }
            } catch (error: java.io.IOException) {
                fail(
                    "assets/$CONTRACT_ASSET is missing",
                    "the contract written by android_demo/export_model.py",
                    "run `python android_demo/export_model.py RUN_DIR` and rebuild",
                )
            }
            return parse(JSONObject(text))
        }

        private fun parse(json: JSONObject): ModelContract {
            val format = json.getInt("format")
            requireField(format == EXPECTED_FORMAT, "format", format, EXPECTED_FORMAT)

            val input = json.getJSONObject("input")
            val shape = ints(input.getJSONArray("shape"))
            val expectedShape = listOf(1, INPUT_HEIGHT, INPUT_WIDTH, INPUT_CHANNELS)
            requireField(shape == expectedShape, "input.shape", shape, expectedShape)
            val dtype = input.getString("dtype")
            requireField(dtype == "float32", "input.dtype", dtype, "float32")
            val layout = input.getString("layout")
            requireField(layout == "NHWC", "input.layout", layout, "NHWC")

            val scaling = input.getJSONObject("scaling")
            val scale = scaling.getDouble("scale")
            requireField(abs(scale - PIXEL_SCALE) < TOLERANCE, "input.scaling.scale", scale, PIXEL_SCALE)
            val offset = scaling.getDouble("offset")
            requireField(abs(offset - PIXEL_OFFSET) < TOLERANCE, "input.scaling.offset", offset, PIXEL_OFFSET)
            val background = input.getInt("background")
            requireField(background == BACKGROUND_PIXEL, "input.background", background, BACKGROUND_PIXEL)
            val foreground = input.getInt("foreground")
            requireField(foreground == FOREGROUND_PIXEL, "input.foreground", foreground, FOREGROUND_PIXEL)

            val output = json.getJSONObject("output")
            val outShape = ints(output.getJSONArray("shape"))
            requireField(outShape == listOf(1, NUM_CLASSES), "output.shape", outShape, listOf(1, NUM_CLASSES))
            val kind = output.getString("kind")
            requireField(kind == "logits" || kind == "probabilities", "output.kind", kind, "logits or probabilities")

            val labelArray = json.getJSONArray("labels")
            val labels = (0 until labelArray.length()).map { labelArray.getString(it) }
            requireField(labels.size == NUM_CLASSES, "labels (count)", labels.size, NUM_CLASSES)

            val model = json.getString("model")
            requireField(model == MODEL_ASSET, "model", model, MODEL_ASSET)
            return ModelContract(model, json.getString("sha256"), kind, labels)
        }

        private fun ints(array: JSONArray): List<Int> = (0 until array.length()).map { array.getInt(it) }

        private fun requireField(ok: Boolean, field: String, found: Any, expected: Any) {
            if (!ok) {
                fail(
                    "assets/$CONTRACT_ASSET has $field = $found",
                    "$expected (ModelContract.kt)",
                    "export an MNIST binarynet with android_demo/export_model.py, " +
                        "or update ModelContract.kt together with the exporter",
                )
            }
        }

        private fun fail(what: String, expected: String, fix: String): Nothing =
            throw IllegalStateException("$what; expected $expected. Fix: $fix.")
    }

    /** Maps one 0..255 gray value to the model's input, as in training. */
    fun scale(pixel: Int): Float = pixel * PIXEL_SCALE + PIXEL_OFFSET
}
