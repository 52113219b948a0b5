package com.example.bnndigits

import android.app.Activity
import android.os.Bundle
import android.util.Log
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.Button
import android.widget.LinearLayout
import android.widget.TextView

/**
 * Draw a digit, press "Classify": shows the top class, its score, this
 * inference's latency and the median of the last [WINDOW] latencies.
 *
 * The latency is the wall time of `Interpreter.run` alone (input already
 * scaled), measured with SystemClock.elapsedRealtimeNanos(). The first run
 * after start-up includes one-off allocation; the median damps it. For
 * comparable numbers use the adb benchmark protocol in README.md.
 */
class MainActivity : Activity() {
    private lateinit var digits: DigitView
    private lateinit var result: TextView
    private var classifier: Classifier? = null
    private val latenciesNanos = ArrayDeque<Long>()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        digits = DigitView(this)
        result = TextView(this).apply { textSize = 20f }
        val classify = Button(this).apply { text = "Classify" }
        val clear = Button(this).apply { text = "Clear" }
        val buttons = LinearLayout(this).apply {
            orientation = LinearLayout.HORIZONTAL
            addView(classify, LinearLayout.LayoutParams(0, WRAP_CONTENT, 1f))
            addView(clear, LinearLayout.LayoutParams(0, WRAP_CONTENT, 1f))
        }
        val root = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            setPadding(32, 32, 32, 32)
            addView(digits, LinearLayout.LayoutParams(MATCH_PARENT, 0, 1f))
            addView(buttons, LinearLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT))
            addView(result, LinearLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT))
        }
        setContentView(root)

        classifier = try {
            Classifier(assets, ModelContract.load(assets))
        } catch (error: Exception) {
            // A missing asset, a contract mismatch, or a TFLite runtime without LCE's ops.
            Log.e(TAG, "cannot load the model", error)
            result.text = "Cannot load the model:\n${error.message}"
            classify.isEnabled = false
            null
        }
        if (classifier != null) result.text = "Draw a digit (white on black), then Classify."

        classify.setOnClickListener { classifyDrawing() }
        clear.setOnClickListener {
            digits.clear()
            result.text = ""
        }
    }

    private fun classifyDrawing() {
        val model = classifier ?: return
        if (digits.isEmpty) {
            result.text = "Draw a digit first."
            return
        }
        val prediction = model.classify(digits.toModelPixels())
        latenciesNanos.addLast(prediction.latencyNanos)
        while (latenciesNanos.size > WINDOW) latenciesNanos.removeFirst()
        val label = model.contract.labels.getOrElse(prediction.top) { "${prediction.top}" }
        val score = prediction.scores[prediction.top]
        result.text = String.format(
            "Digit: %s (p = %.2f)\nThis inference: %.3f ms\nMedian of last %d: %.3f ms",
            label,
            score,
            prediction.latencyNanos / 1e6,
            latenciesNanos.size,
            median(latenciesNanos) / 1e6,
        )
    }

    override fun onDestroy() {
        classifier?.close()
        classifier = null
        super.onDestroy()
    }

    private companion object {
        const val TAG = "BnnDigits"
        const val WINDOW = 20

        fun median(values: Collection<Long>): Double {
            val sorted = values.sorted()
            val middle = sorted.size / 2
            return if (sorted.size % 2 == 1) {
                sorted[middle].toDouble()
            } else {
                (sorted[middle - 1] + sorted[middle]) / 2.0
            }
        }
    }
}
