// How a subcommand declares itself: one small file per command under src/cmd/, each defining a
// static Command that registers with the executable (no central list to edit).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace ddcsr::cli {

struct Command {
  std::string name;
  std::string synopsis;                 // one line, shown in `ddcsr --help`
  std::string description;              // paragraphs shown in `ddcsr NAME --help`
  std::vector<std::string> references;  // papers the command implements
  int order = 100;                      // position in `ddcsr --help`
  // Declares arguments and options on `app`; returns the function to run once parsed.
  std::function<std::function<int()>(CLI::App& app)> setup;
};

// Registration at static-initialisation time; see DDCSR_COMMAND.
bool register_command(Command command);
const std::vector<Command>& registered_commands();

}  // namespace ddcsr::cli

#define DDCSR_CONCAT_INNER(a, b) a##b
#define DDCSR_CONCAT(a, b) DDCSR_CONCAT_INNER(a, b)
// Usage: DDCSR_COMMAND(make_convert_command());
#define DDCSR_COMMAND(expr)                                             \
  static const bool DDCSR_CONCAT(ddcsr_command_registered_, __LINE__) = \
      ::ddcsr::cli::register_command(expr)
