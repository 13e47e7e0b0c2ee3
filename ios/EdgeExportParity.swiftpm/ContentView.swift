// One screen: parity + latency per compute-unit choice, photo classification, and the log.
import PhotosUI
import SwiftUI

struct ContentView: View {
    @StateObject private var model = AppModel()
    @State private var photo: PhotosPickerItem?

    var body: some View {
        NavigationStack {
            List {
                Section("Parity and latency on this device") {
                    ForEach(model.unitChoices) { choice in
                        Button("Run on \(choice.id)") { model.runParity(choice.units) }
                            .disabled(model.busy || model.bundle == nil)
                    }
                }
                Section("Photo") {
                    PhotosPicker("Classify a photo", selection: $photo, matching: .images)
                        .disabled(model.busy || model.bundle == nil)
                }
                Section("Results") {
                    ForEach(Array(model.log.enumerated().reversed()), id: \.offset) { entry in
                        Text(entry.element).font(.system(.footnote, design: .monospaced)).textSelection(.enabled)
                    }
                }
            }
            .navigationTitle("Parity")
        }
        .task { model.load() }
        .onChange(of: photo) { item in
            guard let item else { return }
            Task {
                if let data = try? await item.loadTransferable(type: Data.self) { model.classify(data) }
            }
        }
    }
}
