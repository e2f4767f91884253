import ArgumentParser

@main
struct Switchboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "Queues, pub/sub and key-value with TTL; jobs, routing and a real-time gateway.",
        subcommands: [ServeCommand.self, AgentCommand.self, TokenCommand.self, Bench.self]
    )
}
