package com.example.bnndigits

import android.content.res.AssetManager
import android.os.SystemClock
import org.tensorflow.lite.Interpreter
import java.io.Closeable
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import java.security.MessageDigest
import kotlin.math.exp

/** One classification: the class scores, the top class and the wall time of `run`. */
data class Prediction(val scores: FloatArray, val top: Int, val latencyNanos: Long)

/**
 * Runs `model.tflite` with TFLite's Java [Interpreter].
 *
 * LCE's ops need no registration here: the LCE Lite AAR replaces the stock
 * TFLite AAR, and its native library's op resolver registers LCE's custom ops
 * (LceQuantize, LceBconv2d, LceBMaxPool2d, ...) next to the builtins. With the
 * stock TFLite AAR instead, creating the Interpreter fails on the first LCE op.
 */
class Classifier(assets: AssetManager, val contract: ModelContract, threads: Int = 1) :
    Closeable {
    private val interpreter: Interpreter
    private val input: ByteBuffer = ByteBuffer
        .allocateDirect(4 * ModelContract.INPUT_HEIGHT * ModelContract.INPUT_WIDTH * ModelContract.INPUT_CHANNELS)
        .order(ByteOrder.nativeOrder())
    private val output = Array(1) { FloatArray(ModelContract.NUM_CLASSES) }

    init {
        val model = mapAsset(assets, contract.modelAsset)
        val digest = sha256(model)
        check(digest == contract.sha256) {
            "assets/${contract.modelAsset} has SHA-256 $digest; expected ${contract.sha256} " +
                "from ${ModelContract.CONTRACT_ASSET}. Fix: export both files together " +
                "with android_demo/export_model.py and rebuild."
        }
        // LCE's Android guide: XNNPACK does not work with the LCE Lite AAR and is
        // not needed (LCE's own kernels run the binary layers), so turn it off.
        val options = Interpreter.Options().setNumThreads(threads).setUseXNNPACK(false)
        interpreter = Interpreter(model, options)
        val shape = interpreter.getInputTensor(0).shape().toList()
        val expected = listOf(1, ModelContract.INPUT_HEIGHT, ModelContract.INPUT_WIDTH, ModelContract.INPUT_CHANNELS)
        check(shape == expected) {
            "The model's input tensor is $shape; expected $expected. Fix: export an MNIST " +
                "binarynet with android_demo/export_model.py."
        }
    }

    /** Classifies row-major gray pixels (0..255, [ModelContract.INPUT_HEIGHT] x [ModelContract.INPUT_WIDTH]). */
    fun classify(pixels: IntArray): Prediction {
        require(pixels.size == ModelContract.INPUT_HEIGHT * ModelContract.INPUT_WIDTH) {
            "Got ${pixels.size} pixels; expected ${ModelContract.INPUT_HEIGHT * ModelContract.INPUT_WIDTH}."
        }
        input.rewind()
        for (pixel in pixels) {
            input.putFloat(contract.scale(pixel))
        }
        input.rewind()
        val start = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, output)
        val elapsed = SystemClock.elapsedRealtimeNanos() - start
        val scores = output[0].copyOf()
        val top = scores.indices.maxByOrNull { scores[it] } ?: 0
        return Prediction(toProbabilities(scores), top, elapsed)
    }

    private fun toProbabilities(scores: FloatArray): FloatArray {
        if (contract.outputKind == "probabilities") return scores
        val max = scores.maxOrNull() ?: 0f
        val exps = scores.map { exp((it - max).toDouble()) }
        val total = exps.sum()
        return FloatArray(scores.size) { (exps[it] / total).toFloat() }
    }

    override fun close() = interpreter.close()

    private companion object {
        /** Memory-maps an uncompressed asset (`noCompress += "tflite"` in app/build.gradle.kts). */
        fun mapAsset(assets: AssetManager, name: String): MappedByteBuffer =
            assets.openFd(name).use { descriptor ->
                FileInputStream(descriptor.fileDescriptor).use { stream ->
                    stream.channel.map(
                        FileChannel.MapMode.READ_ONLY,
                        descriptor.startOffset,
                        descriptor.declaredLength,
                    )
                }
            }

        fun sha256(buffer: ByteBuffer): String {
            val digest = MessageDigest.getInstance("SHA-256")
            digest.update(buffer.duplicate())
            return digest.digest().joinToString("") { "%02x".format(it) }
        }
    }
}
