#include "ddcsr/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ddcsr/error.h"

namespace fs = std::filesystem;

namespace ddcsr {

std::string full_extension(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const char* ext :
       {".nii.gz", ".surf.gii", ".gii.gz", ".func.gii", ".shape.gii", ".tar.gz"}) {
    const std::string e(ext);
    if (lower.size() > e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0)
      return name.substr(name.size() - e.size());
  }
  const auto dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? std::string() : name.substr(dot);
}

std::string temporary_token() {
  static std::atomic<int> counter{0};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  for (char* c = host; *c; ++c)
    if (*c == '~' || *c == '/') *c = '_';
  return std::string(".tmp-") + host + "~" + std::to_string(::getpid()) + "~" +
         std::to_string(counter++);
}

bool is_stale_temporary(const std::string& name) {
  const auto start = name.find(".tmp-");
  if (start == std::string::npos) return false;
  const auto t1 = name.find('~', start), t2 = t1 == std::string::npos ? t1 : name.find('~', t1 + 1);
  if (t2 == std::string::npos) return false;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string here = host[0] ? host : "localhost";
  std::replace(here.begin(), here.end(), '~', '_');
  std::replace(here.begin(), here.end(), '/', '_');
  if (name.substr(start + 5, t1 - start - 5) != here) return false;
  const long pid = std::strtol(name.c_str() + t1 + 1, nullptr, 10);
  if (pid <= 0 || pid == ::getpid()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

AtomicFile::AtomicFile(const std::string& final_path) : final_path_(final_path) {
  const fs::path p(final_path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(final_path, "output folder does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    throw InputError(final_path, "output folder is not writable");
  if (fs::is_directory(p, ec)) throw InputError(final_path, "output path is a folder");
  const std::string ext = full_extension(final_path);
  const std::string name = p.filename().string();
  const std::string stem = name.substr(0, name.size() - ext.size());
  temp_path_ = (dir / ("." + stem + temporary_token() + ext)).string();
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_path_, ec);
  }
}

void AtomicFile::commit() {
  // fsync so a crash right after the rename cannot leave an empty file under the final name.
  const int fd = ::open(temp_path_.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(final_path_, "temporary output was not written");
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced)
    throw InputError(final_path_, std::string("cannot flush output: ") + std::strerror(errno));
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    throw InputError(final_path_,
                     std::string("cannot rename output into place: ") + std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile file(path);
  {
    std::ofstream out(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(path, "cannot open for writing");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw InputError(path, "write failed (disk full?)");
  }
  file.commit();
}

std::string read_file_maybe_gz(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path, "file not found");
  if (fs::is_directory(path, ec)) throw InputError(path, "is a folder, not a file");
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) throw InputError(path, "cannot open for reading");
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const int n = gzread(gz, buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(gz, &code);
      gzclose(gz);
      throw InputError(path, "corrupt gzip data (" + msg + ")");
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      gzclose(gz);
      throw InputError(path, "file is larger than " + std::to_string(max_bytes >> 20) + " MiB");
    }
  }
  // zlib reports a gzip stream cut short only through gzclose/gzerror.
  int code = 0;
  const char* msg = gzerror(gz, &code);
  const std::string err = msg ? msg : "";
  const int close_status = gzclose(gz);
  if (code == Z_BUF_ERROR || close_status == Z_BUF_ERROR)
    throw InputError(path, "truncated gzip file");
  if (code != Z_OK && code != Z_STREAM_END)
    throw InputError(path, "corrupt gzip data (" + err + ")");
  return out;
}

}  // namespace ddcsr
