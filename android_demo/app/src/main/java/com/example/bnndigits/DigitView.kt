package com.example.bnndigits

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Path
import android.graphics.Rect
import android.graphics.RectF
import android.util.AttributeSet
import android.view.MotionEvent
import android.view.View
import kotlin.math.max
import kotlin.math.min

/**
 * A square canvas for one digit: white strokes on black, as in MNIST.
 *
 * [toModelPixels] turns the drawing into the model's 28x28 gray image the way
 * MNIST digits were made: the strokes' bounding box is scaled into a 20x20 box
 * (keeping the aspect ratio) and centred in a 28x28 black image.
 */
class DigitView(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private val stroke = Paint().apply {
        color = Color.rgb(ModelContract.FOREGROUND_PIXEL, ModelContract.FOREGROUND_PIXEL, ModelContract.FOREGROUND_PIXEL)
        style = Paint.Style.STROKE
        strokeCap = Paint.Cap.ROUND
        strokeJoin = Paint.Join.ROUND
        isAntiAlias = true
    }
    private val background = Color.rgb(ModelContract.BACKGROUND_PIXEL, ModelContract.BACKGROUND_PIXEL, ModelContract.BACKGROUND_PIXEL)
    private val path = Path()
    private val inked = RectF()
    private var drawing: Bitmap? = null
    private var drawingCanvas: Canvas? = null

    /** True until something is drawn. */
    var isEmpty = true
        private set

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        super.onMeasure(widthMeasureSpec, heightMeasureSpec)
        val side = min(measuredWidth, measuredHeight)
        setMeasuredDimension(side, side)
    }

    override fun onSizeChanged(w: Int, h: Int, oldw: Int, oldh: Int) {
        super.onSizeChanged(w, h, oldw, oldh)
        if (w <= 0 || h <= 0) return
        stroke.strokeWidth = w / 14f // about two MNIST pixels wide after scaling
        drawing = Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888)
        drawingCanvas = Canvas(drawing!!)
        clear()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        drawing?.let { canvas.drawBitmap(it, 0f, 0f, null) }
        canvas.drawPath(path, stroke)
    }

    override fun onTouchEvent(event: MotionEvent): Boolean {
        val x = event.x
        val y = event.y
        when (event.actionMasked) {
            MotionEvent.ACTION_DOWN -> path.moveTo(x, y)
            MotionEvent.ACTION_MOVE -> path.lineTo(x, y)
            MotionEvent.ACTION_UP -> {
                path.lineTo(x, y)
                drawingCanvas?.drawPath(path, stroke)
                path.reset()
                performClick()
            }
            else -> return false
        }
        val half = stroke.strokeWidth / 2
        val dot = RectF(x - half, y - half, x + half, y + half)
        if (isEmpty) inked.set(dot) else inked.union(dot)
        isEmpty = false
        invalidate()
        return true
    }

    override fun performClick(): Boolean = super.performClick()

    fun clear() {
        path.reset()
        drawingCanvas?.drawColor(background)
        inked.setEmpty()
        isEmpty = true
        invalidate()
    }

    /** Row-major gray values (0..255) of the model-sized image of the drawing. */
    fun toModelPixels(): IntArray {
        val height = ModelContract.INPUT_HEIGHT
        val width = ModelContract.INPUT_WIDTH
        val small = Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888)
        val canvas = Canvas(small)
        canvas.drawColor(background)
        val source = drawing
        if (source != null && !isEmpty) {
            val box = Rect()
            inked.roundOut(box)
            box.intersect(0, 0, source.width, source.height)
            val inner = min(width, height) * 20f / 28f
            val scale = inner / max(box.width(), box.height()).coerceAtLeast(1)
            val w = box.width() * scale
            val h = box.height() * scale
            val target = RectF((width - w) / 2, (height - h) / 2, (width + w) / 2, (height + h) / 2)
            canvas.drawBitmap(source, box, target, Paint(Paint.FILTER_BITMAP_FLAG))
        }
        val argb = IntArray(width * height)
        small.getPixels(argb, 0, width, 0, 0, width, height)
        small.recycle()
        return IntArray(argb.size) { Color.red(argb[it]) } // gray: R = G = B
    }
}
