// A bundle folder as the app sees it: the manifest, and its files read through [BundleFiles]
// (a directory on the JVM, the APK's assets on Android). No path leaves the bundle.
package io.edgeexport.bundle

import java.io.File
import java.security.MessageDigest

/** Reads a file of the bundle by its manifest-relative path. */
fun interface BundleFiles {
    fun read(path: String): ByteArray
}

class DirectoryFiles(private val root: File) : BundleFiles {
    override fun read(path: String): ByteArray {
        val f = File(root, path)
        if (!f.isFile) throw BundleException("$f: missing from the bundle; copy the whole folder edgeexport convert wrote")
        return f.readBytes()
    }
}

class Bundle(val manifest: Manifest, private val files: BundleFiles) {

    fun read(path: String): ByteArray {
        checkInside(path)
        return files.read(path)
    }

    /** One parity tensor (little-endian raw bytes, shape and dtype from the manifest). */
    fun tensor(entry: ParityEntry): Tensor = Tensor(entry.shape, DType.of(entry.dtype), read(entry.path))

    /** Inputs of sample [i] by input name, in the manifest's input order. */
    fun inputs(i: Int): LinkedHashMap<String, Tensor> = select(i, "input")

    /** Expected (PyTorch) outputs of sample [i] by output name. */
    fun expected(i: Int): LinkedHashMap<String, Tensor> = select(i, "expected")

    private fun select(i: Int, kind: String): LinkedHashMap<String, Tensor> {
        val out = LinkedHashMap<String, Tensor>()
        manifest.parity.filter { it.sample == i && it.kind == kind }.forEach { out[it.tensor] = tensor(it) }
        return out
    }

    /** The manifest's labels (the file `labels.path` names, `labels.count` lines), else null. */
    fun labels(): List<String>? = manifest.labels?.let { Labels.load(it) { p -> read(p) } }

    /** Paths whose sha256 differs from the manifest's `files` (missing files included). */
    fun verify(): List<String> = manifest.files.entries.filter { (path, sha) ->
        try {
            sha256Hex(read(path)) != sha.lowercase()
        } catch (e: BundleException) {
            true
        }
    }.map { it.key }

    companion object {
        fun open(files: BundleFiles): Bundle =
            Bundle(Manifest.parse(String(files.read("manifest.json"), Charsets.UTF_8)), files)

        fun open(dir: File): Bundle = open(DirectoryFiles(dir))

        fun sha256Hex(data: ByteArray): String =
            MessageDigest.getInstance("SHA-256").digest(data).joinToString("") { "%02x".format(it) }

        /** DESIGN: no path from a manifest is followed outside its folder. */
        fun checkInside(path: String) {
            val parts = path.split('/')
            if (path.isEmpty() || path.startsWith("/") || path.contains('\\') || parts.any { it == ".." }) {
                throw BundleException("manifest path '$path' points outside the bundle; the manifest is damaged")
            }
        }
    }
}
