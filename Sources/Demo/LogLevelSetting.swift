import ArgumentParser
import Foundation
import Logging

/// The log level `serve` and `agent` run at: `--log-level`, else env `LOG_LEVEL`, else info.
enum LogLevelSetting {
    static let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")

    /// The level `flag` (or `LOG_LEVEL`) names, in any case; a name that is none is an error
    /// naming the choices.
    static func level(flag: String?) throws -> Logger.Level {
        let environment = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { $0.isEmpty ? nil : $0 }
        guard let name = flag ?? environment else { return .info }
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw ValidationError("unknown \(flag != nil ? "--log-level " : "LOG_LEVEL=")\(name): expected \(names)")
        }
        return level
    }
}
