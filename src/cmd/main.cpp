// ddcsr: cortical surface reconstruction from diffusion MRI.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/progress.h"
#include "ddcsr/error.h"
#include "ddcsr/threads.h"
#include "ddcsr/version.h"

namespace {

const char* kExitCodes =
    "Exit codes: 0 success, 1 internal failure, 2 usage error, 3 bad input data.";

void setup_logging(bool verbose, bool quiet, const std::string& log_file) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("ddcsr: %^%l%$: %v");
  console->set_level(quiet     ? spdlog::level::err
                     : verbose ? spdlog::level::debug
                               : spdlog::level::info);
  std::vector<spdlog::sink_ptr> sinks{console};
  if (!log_file.empty()) {
    try {
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file, false);
      file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %l: %v");
      file->set_level(spdlog::level::debug);
      sinks.push_back(file);
    } catch (const spdlog::spdlog_ex&) {
      throw ddcsr::InputError(log_file, "cannot open log file for writing");
    }
  }
  auto logger = std::make_shared<spdlog::logger>("ddcsr", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ddcsr: white and pial cortical surfaces of both hemispheres from diffusion MRI alone,\n"
      "after the DDCSR design (an SDF network, then diffeomorphic mesh deformation).\n" +
          std::string(kExitCodes),
      "ddcsr"};
  app.footer(
      std::string(kExitCodes) +
      "\nReference: Li, Chen, Sochen, Zhang, Westin, Rathi, O'Donnell, Pasternak, Zhang (2025). "
      "DDCSR: diffusion-MRI-based cortical surface reconstruction.");
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("ddcsr ") + ddcsr::kVersion + " (" + ddcsr::kGitDescribe + ")");

  int threads = 0;
  bool verbose = false, quiet = false;
  std::string log_file;
  app.add_option("--threads", threads,
                 "Threads for LibTorch and ddcsr's own loops (default: SLURM_CPUS_PER_TASK, else "
                 "OMP_NUM_THREADS, else all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("-v,--verbose", verbose, "Log debugging detail");
  app.add_flag("-q,--quiet", quiet, "Only print errors");
  app.add_option("--log-file", log_file, "Also write the log to this file");
  app.fallthrough();

  std::function<int()> run;
  for (const auto& command : ddcsr::cli::registered_commands()) {
    std::string help = command.description;
    if (!command.references.empty()) {
      help += "\n\nReferences:";
      for (const auto& r : command.references) help += "\n  " + r;
    }
    CLI::App* sub = app.add_subcommand(command.name, command.synopsis);
    sub->footer(help + "\n\n" + kExitCodes);
    auto runner = std::make_shared<std::function<int()>>(command.setup(*sub));
    sub->callback([runner, &run] { run = *runner; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version are successes; every other parse failure is a usage error.
    const int code = app.exit(e);
    return code == 0 ? ddcsr::kExitOk : ddcsr::kExitUsage;
  }

  try {
    setup_logging(verbose, quiet, log_file);
    ddcsr::cli::set_quiet(quiet);
    ddcsr::set_thread_count(ddcsr::resolve_thread_count(threads));
    return run ? run() : ddcsr::kExitUsage;
  } catch (const ddcsr::InputError& e) {
    std::cerr << "ddcsr: error: " << e.what() << "\n";
    return ddcsr::kExitBadInput;
  } catch (const ddcsr::UsageError& e) {
    std::cerr << "ddcsr: usage error: " << e.what() << "\n";
    return ddcsr::kExitUsage;
  } catch (const std::bad_alloc&) {
    std::cerr << "ddcsr: error: out of memory\n";
    return ddcsr::kExitInternal;
  } catch (const std::exception& e) {
    std::cerr << "ddcsr: internal error: " << e.what() << "\n";
    return ddcsr::kExitInternal;
  }
}
