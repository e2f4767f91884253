import ArgumentParser
import Foundation

/// `switchboard bench …`: the built-in benchmarks, each printing one table.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the built-in benchmarks and print a table (build with -c release).",
        subcommands: [MemoryBench.self, RedisBench.self, JobsBench.self, FanoutBench.self, RelayFloorBench.self]
    )
}

/// A benchmark table: a title, column headers and rows, printed with aligned columns.
struct BenchTable {
    var title: String
    var headers: [String]
    var rows: [[String]] = []

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                // The first column reads left-aligned, figures right-aligned.
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return index == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        var lines = [title, line(headers), line(widths.map { String(repeating: "-", count: $0) })]
        lines += rows.map(line)
        return lines.joined(separator: "\n")
    }
}

extension Duration {
    /// Seconds as a floating-point number, for rates.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Formats a rate as e.g. `12.34 M/s`.
func formatRate(_ perSecond: Double) -> String {
    if perSecond >= 1e6 { return String(format: "%.2f M/s", perSecond / 1e6) }
    if perSecond >= 1e3 { return String(format: "%.1f k/s", perSecond / 1e3) }
    return String(format: "%.0f /s", perSecond)
}
