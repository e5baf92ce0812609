// Every output goes to a temporary name in the destination folder and is renamed when complete,
// so an interrupted or failed run never leaves a partial file under the final name.
#pragma once
#include <string>

namespace ddcsr {

class AtomicFile {
 public:
  // Throws InputError when the destination folder does not exist or is not writable.
  explicit AtomicFile(const std::string& final_path);
  ~AtomicFile();  // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // A hidden name in the same folder that keeps the final name's extension (.nii.gz, .surf.gii),
  // so writers that pick a format by extension still do.
  const std::string& temp_path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }
  // fsyncs and renames the temporary file onto the final name.
  void commit();

 private:
  std::string final_path_, temp_path_;
  bool committed_ = false;
};

// Writes `bytes` to `path` through an AtomicFile; InputError on any failure (disk full included).
void write_file_atomic(const std::string& path, const std::string& bytes);

// Reads a whole file, transparently gunzipping it when it is gzip-compressed.
// InputError on a missing, unreadable or truncated/corrupt gzip file. `max_bytes` bounds the
// decompressed size so a hostile file cannot exhaust memory.
std::string read_file_maybe_gz(const std::string& path, size_t max_bytes = size_t(1) << 31);

// The marker in every temporary name: ".tmp-HOST~PID~N", unique per host, process and call, so
// leftovers of killed runs can be told from the work of live processes (even on other nodes
// sharing the file system).
std::string temporary_token();
// True when `name` holds a temporary token of a process on this host that no longer runs.
bool is_stale_temporary(const std::string& name);

// Double extensions that belong together: ".nii.gz", ".surf.gii", ".gii.gz", ...
std::string full_extension(const std::string& path);

}  // namespace ddcsr
