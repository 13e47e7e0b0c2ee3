// Entry point of the sample app.
import SwiftUI

@main
struct ParityApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
