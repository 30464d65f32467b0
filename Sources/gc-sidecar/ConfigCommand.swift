import ArgumentParser
import Foundation
import Server

/// `gc-sidecar config …`: the settings' documentation, generated from the
/// one table of settings, and a check of a configuration without starting.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the settings' documentation, or check a configuration.",
        subcommands: [Show.self, Markdown.self, EnvExample.self]
    )

    /// `gc-sidecar config show`: validates flags, environment and file as
    /// `serve` would and prints every setting's value in effect.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the configuration serve would use and print it (secrets redacted); exit 2 if invalid."
        )

        @Option(name: .customLong("config"), help: ArgumentHelp("A YAML file of settings (also GC_CONFIG_FILE).", valueName: "file"))
        var configFile: String?

        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Settings as for serve.", valueName: "setting"))
        var settings: [String] = []

        func run() throws {
            do {
                let loaded = try SidecarConfig.load(arguments: settings, environment: ProcessInfo.processInfo.environment, configFile: configFile)
                for warning in loaded.warnings {
                    FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
                }
                print(loaded.effective.rendered(), terminator: "")
            } catch {
                FileHandle.standardError.write(Data("gc-sidecar: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
    }

    /// `gc-sidecar config markdown`: the README's configuration table.
    struct Markdown: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the README's configuration table (Markdown).")

        func run() {
            print(ConfigDocs.markdown(), terminator: "")
        }
    }

    /// `gc-sidecar config env-example`: deploy/systemd/gc-sidecar.env.example.
    struct EnvExample: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "env-example",
            abstract: "Print the systemd environment-file example with every setting."
        )

        func run() {
            print(ConfigDocs.envExample(), terminator: "")
        }
    }
}
