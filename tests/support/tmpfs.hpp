// A small file system of its own for a test (a tmpfs, which needs root), and a file that fills
// it up: to run the service on a disk that is full, and then is not.
#pragma once

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <string>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace test {

class Tmpfs {
  public:
    // Mounted at `directory` (made if missing), `bytes` large; none when mounting is not
    // permitted here (not root, or no CAP_SYS_ADMIN in this container), with `why` saying so.
    static std::unique_ptr<Tmpfs> mount(const std::filesystem::path& directory, std::size_t bytes,
                                        std::string& why) {
        std::filesystem::create_directories(directory);
        const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
        if (::mount("tmpfs", directory.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) !=
            0) {
            why = "cannot mount a tmpfs at " + directory.string() + ": " + std::strerror(errno) +
                  " (these tests need root)";
            return nullptr;
        }
        return std::unique_ptr<Tmpfs>(new Tmpfs(directory));
    }
    ~Tmpfs() { ::umount2(directory_.c_str(), MNT_DETACH); }
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;
    const std::filesystem::path& path() const { return directory_; }

  private:
    explicit Tmpfs(std::filesystem::path directory) : directory_(std::move(directory)) {}
    std::filesystem::path directory_;
};

// Takes every free byte of the file system `file` is on, until release() or destruction.
class DiskFiller {
  public:
    explicit DiskFiller(std::filesystem::path file) : file_(std::move(file)) {
        const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            throw std::runtime_error("cannot create " + file_.string());
        // At once where the file system can, so that the service does not see the space shrink
        // on the way; then whatever is left, in ever smaller pieces.
        struct statvfs fs {};
        if (::fstatvfs(fd, &fs) == 0)
            ::fallocate(fd, 0, 0, static_cast<off_t>(fs.f_bavail * fs.f_frsize));
        ::lseek(fd, 0, SEEK_END);
        const std::string block(64 << 10, 'x');
        for (std::size_t size = block.size(); size > 0;) {
            if (::write(fd, block.data(), size) < 0)
                size /= 2;
        }
        ::close(fd);
    }
    ~DiskFiller() { release(); }
    DiskFiller(const DiskFiller&) = delete;
    DiskFiller& operator=(const DiskFiller&) = delete;
    void release() {
        std::error_code ignored;
        std::filesystem::remove(file_, ignored);
    }

  private:
    std::filesystem::path file_;
};

} // namespace test
