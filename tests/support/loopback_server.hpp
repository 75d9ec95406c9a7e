// A stand-in TCP server on a free loopback port: for each connection it reads a request up to a
// marker, records it, and answers with what the test's function returns (nothing: just close).
#pragma once

#include "net.hpp"

#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace test {

class LoopbackServer {
  public:
    using Respond = std::function<std::optional<std::string>(const std::string& request)>;

    LoopbackServer(std::string request_end, Respond respond)
        : request_end_(std::move(request_end)), respond_(std::move(respond)) {
        std::tie(fd_, port_) = bound_loopback_socket(SOCK_STREAM);
        ::listen(fd_, 8);
        thread_ = std::thread([this] { serve(); });
    }
    ~LoopbackServer() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    LoopbackServer(const LoopbackServer&) = delete;
    LoopbackServer& operator=(const LoopbackServer&) = delete;

    std::uint16_t port() const { return port_; }
    // Every request received so far, one after the other.
    std::string received() {
        std::lock_guard lock(mutex_);
        return received_;
    }

  private:
    void serve() {
        for (;;) {
            const int client = ::accept(fd_, nullptr, nullptr);
            if (client < 0)
                return;
            std::string request;
            char buf[2048];
            while (request.find(request_end_) == std::string::npos) {
                const auto n = ::recv(client, buf, sizeof buf, 0);
                if (n <= 0)
                    break;
                request.append(buf, static_cast<std::size_t>(n));
            }
            {
                std::lock_guard lock(mutex_);
                received_ += request;
            }
            if (const auto answer = respond_(request))
                ::send(client, answer->data(), answer->size(), MSG_NOSIGNAL);
            ::close(client);
        }
    }

    std::string request_end_;
    Respond respond_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::mutex mutex_;
    std::string received_;
    std::thread thread_;
};

} // namespace test
