#include "ecu2mqtt/store/state_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace ecu2mqtt {
namespace {

// Closes the descriptor however the function is left.
class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

  private:
    int fd_;
};

std::string errno_text(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

} // namespace

std::string write_json_atomically(const std::filesystem::path& path, const nlohmann::json& value) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec)
        return "cannot create " + path.parent_path().string() + ": " + ec.message();
    const std::filesystem::path temp = path.string() + ".tmp";
    const std::string text = value.dump(2) + "\n";
    {
        FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (fd.get() < 0)
            return errno_text("cannot write " + temp.string());
        std::size_t written = 0;
        while (written < text.size()) {
            const auto n = ::write(fd.get(), text.data() + written, text.size() - written);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return errno_text("cannot write " + temp.string());
            written += static_cast<std::size_t>(n);
        }
        if (::fsync(fd.get()) != 0)
            return errno_text("cannot fsync " + temp.string());
        if (::close(fd.release()) != 0)
            return errno_text("cannot close " + temp.string());
    }
    std::filesystem::rename(temp, path, ec);
    if (ec)
        return "cannot rename " + temp.string() + " to " + path.string() + ": " + ec.message();
    // Make the rename itself durable.
    FileDescriptor dir(::open(path.parent_path().empty() ? "." : path.parent_path().c_str(),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0)
        ::fsync(dir.get());
    return {};
}

StateRead read_json_state(const std::filesystem::path& path) {
    StateRead result;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return result;
    std::stringstream text;
    text << in.rdbuf();
    try {
        result.value = nlohmann::json::parse(text.str());
        result.status = StateRead::Status::Ok;
        return result;
    } catch (const nlohmann::json::exception& e) {
        result.error = e.what();
    }
    result.status = StateRead::Status::SetAside;
    result.set_aside_as = path.string() + ".corrupt";
    std::error_code ec;
    std::filesystem::rename(path, result.set_aside_as, ec);
    if (ec)
        result.error += " (and it could not be set aside: " + ec.message() + ")";
    return result;
}

} // namespace ecu2mqtt
