// The bundle in the app's resources and what the screen shows: parity per compute-unit choice,
// latency, and a photo classified through the manifest's preprocessing.
import CoreML
import EdgeExportBundle
import Foundation
import UIKit

/// app.json written by `edgeexport app ios` beside the bundle: preprocessing and labels in the
/// manifest's form, given to `edgeexport app` for a bundle whose manifest has none (labels.path
/// is relative to app.json's folder).
struct AppConfig: Decodable {
    let name: String
    let bundle: String
    let preprocessing: Preprocessing?
    let labels: LabelsRef?
    let latencyRuns: Int?
}

@MainActor
final class AppModel: ObservableObject {
    @Published var log: [String] = []
    @Published var busy = false
    private(set) var bundle: EdgeBundle?
    private var config: AppConfig?
    private var labels: [String]?
    private var labelsOutput: String?
    private var lastUnits: MLComputeUnits?

    func load() {
        do {
            guard let res = Bundle.module.url(forResource: "Resources", withExtension: nil),
                  FileManager.default.fileExists(atPath: res.appendingPathComponent("app.json").path) else {
                throw BundleError("no bundle in this app: create the project with `edgeexport app ios BUNDLE -o DIR`")
            }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let cfg = try decoder.decode(AppConfig.self, from: Data(contentsOf: res.appendingPathComponent("app.json")))
            let b = try EdgeBundle(root: res.appendingPathComponent(cfg.bundle))
            config = cfg
            bundle = b
            labels = try b.labels() ?? cfg.labels.map { ref in try Labels.load(ref) { try Data(contentsOf: res.appendingPathComponent($0)) } }
            labelsOutput = (b.manifest.labels ?? cfg.labels)?.output
            let m = b.manifest
            log.append("\(m.source?.model ?? "model"): \(m.artifact) for \(m.target), \(m.precision), " +
                       "compute units \(m.computeUnits ?? "ALL"), \(m.parity.count) parity tensors, tolerance \(m.tolerances.name ?? "")")
        } catch {
            log.append("error: \(error)")
        }
    }

    struct UnitChoice: Identifiable {
        let id: String
        let units: MLComputeUnits
    }

    /// The manifest's compute units first, then the others worth comparing.
    var unitChoices: [UnitChoice] {
        let own = CoreMLRunner.computeUnits(bundle?.manifest.computeUnits)
        let all = [UnitChoice(id: "CPU", units: .cpuOnly), UnitChoice(id: "CPU+GPU", units: .cpuAndGPU),
                   UnitChoice(id: "CPU+NE", units: .cpuAndNeuralEngine), UnitChoice(id: "All", units: .all)]
        return all.filter { $0.units == own } + all.filter { $0.units != own }
    }

    func runParity(_ units: MLComputeUnits) {
        guard let b = bundle else { return }
        let runs = config?.latencyRuns ?? 50
        busy = true
        Task.detached {
            let text: String
            do {
                let runner = try CoreMLRunner(bundle: b, computeUnits: units)
                let outcome = try ParityCheck.run(b, runner)
                let lat = try Latency.measure(b, runner, runs: runs)
                text = AppModel.table(outcome) + String(format: "\nlatency over %d runs: median %.2f ms, p90 %.2f ms", lat.runs, lat.medianMs, lat.p90Ms)
            } catch {
                text = "error: \(error)"
            }
            await MainActor.run {
                self.log.append(text)
                self.lastUnits = units
                self.busy = false
            }
        }
    }

    nonisolated static func table(_ o: ParityOutcome) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        var lines = [o.runner, pad("output", 20) + "     max_abs     max_rel    cosine  top1"]
        for (name, s) in o.perOutput + (o.total.map { [("(worst)", $0)] } ?? []) {
            let top1 = s.top1Agreement.map { String(format: "%.3f", $0) } ?? "-"
            lines.append(pad(name, 20) + String(format: " %11.3e %11.3e %9.6f ", s.maxAbsErr, s.maxRelErr, s.cosine) + top1)
        }
        lines.append(o.passed ? "PASS (\(o.tolerance.name ?? ""))" : "FAIL (\(o.tolerance.name ?? "")): \(o.violations.joined(separator: "; "))")
        return lines.joined(separator: "\n")
    }

    func classify(_ data: Data) {
        guard let b = bundle else { return }
        guard let pre = b.manifest.preprocessing ?? config?.preprocessing else {
            log.append("no preprocessing in the manifest: regenerate with `edgeexport app ios BUNDLE --preprocess imagenet`")
            return
        }
        let units = lastUnits ?? CoreMLRunner.computeUnits(b.manifest.computeUnits)
        let labels = self.labels, labelled = self.labelsOutput
        busy = true
        Task.detached {
            let text: String
            do {
                guard let cg = UIImage(data: data)?.cgImage else { throw BundleError("cannot decode the photo") }
                guard let input = b.manifest.inputs.first(where: { $0.name == pre.input }) else {
                    throw BundleError("preprocessing names input '\(pre.input)', which the manifest does not have")
                }
                let tensor = try pre.tensor(try PixelImage(cgImage: cg), input: input)
                let runner = try CoreMLRunner(bundle: b, computeUnits: units)
                let out = try runner.run([input.name: tensor])
                // the labelled output (else the first), int8 codes dequantized to real scores
                let name = labelled ?? b.manifest.outputs.first?.name ?? ""
                guard let raw = out[name] ?? out.values.first else { throw BundleError("the model returned no output") }
                let scores = (b.manifest.output(name)?.real(raw) ?? raw).toDoubles()
                text = "photo \(cg.width)x\(cg.height) on \(runner.name):\n" +
                    Labels.topK(scores, 5, labels: labels).map { String(format: "%6.3f  ", $0.score) + $0.label }.joined(separator: "\n")
            } catch {
                text = "error: \(error)"
            }
            await MainActor.run {
                self.log.append(text)
                self.busy = false
            }
        }
    }
}
