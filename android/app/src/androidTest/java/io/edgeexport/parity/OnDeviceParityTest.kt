// On-device parity: the bundle packed in this APK, run on the phone by LiteRT, must stay within
// the manifest's tolerance of the PyTorch outputs. CPU must run; NNAPI and GPU are checked when
// the phone offers them (a delegate that runs and misses the tolerance fails the test).
package io.edgeexport.parity

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import io.edgeexport.bundle.ParityCheck
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import org.junit.runner.RunWith

@RunWith(AndroidJUnit4::class)
class OnDeviceParityTest {
    private val app by lazy { AppBundle.load(InstrumentationRegistry.getInstrumentation().targetContext) }

    @Test
    fun bundleFilesMatchManifest() {
        assertEquals(emptyList<String>(), app.verify())
    }

    private fun check(acc: Accelerator) {
        val reason = acc.unavailableReason()
        assumeTrue("${acc.label}: $reason", reason == null)
        LiteRtRunner(app.bundle.read(app.bundle.manifest.artifact), acc).use { runner ->
            val outcome = ParityCheck.run(app.bundle, runner)
            println(outcome.table())
            assertTrue("${acc.label}:\n${outcome.table()}", outcome.passed)
        }
    }

    @Test
    fun parityOnCpu() = check(Accelerator.CPU)

    @Test
    fun parityOnNnapi() = check(Accelerator.NNAPI)

    @Test
    fun parityOnGpu() = check(Accelerator.GPU)
}
