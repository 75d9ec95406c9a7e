// Loopback TCP helpers for tests: free ports and a blocking ECU-like client.
#pragma once

#include <arpa/inet.h>
#include <chrono>
#include <cstdint>
#include <netinet/in.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace test {

// A socket of `type` (SOCK_STREAM, SOCK_DGRAM) bound to a free port on 127.0.0.1, and that port.
// The caller owns the descriptor.
inline std::pair<int, std::uint16_t> bound_loopback_socket(int type) {
    const int fd = ::socket(AF_INET, type, 0);
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot bind a loopback socket");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return {fd, ntohs(addr.sin_port)};
}

// A port that was free a moment ago (bound to 0 and released).
inline std::uint16_t free_port() {
    const auto [fd, port] = bound_loopback_socket(SOCK_STREAM);
    ::close(fd);
    return port;
}

// A TCP socket connected to 127.0.0.1:`port`, or -1. The caller owns the descriptor.
// `from`: the loopback address to connect from (127.0.0.0/8 is all this host's), as another
// device on the LAN would; the kernel's choice when empty.
inline int connect_loopback(std::uint16_t port, const std::string& from = "") {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (!from.empty()) {
        sockaddr_in source{};
        source.sin_family = AF_INET;
        ::inet_pton(AF_INET, from.c_str(), &source.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
            ::close(fd);
            return -1;
        }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

class TcpClient {
  public:
    explicit TcpClient(std::uint16_t port,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5),
                       const std::string& from = "") {
        fd_ = connect_loopback(port, from);
        if (fd_ < 0)
            throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
        timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~TcpClient() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    TcpClient(const TcpClient&) = delete;
    TcpClient& operator=(const TcpClient&) = delete;

    // Sends in pieces of `piece` bytes (0: all at once), pausing between pieces.
    void send(const std::string& bytes, std::size_t piece = 0,
              std::chrono::microseconds pause = std::chrono::microseconds(0)) {
        std::size_t sent = 0;
        while (sent < bytes.size()) {
            const std::size_t n =
                piece == 0 ? bytes.size() - sent : std::min(piece, bytes.size() - sent);
            const auto r = ::send(fd_, bytes.data() + sent, n, MSG_NOSIGNAL);
            if (r <= 0)
                throw std::runtime_error("send failed");
            sent += static_cast<std::size_t>(r);
            if (pause.count() > 0)
                std::this_thread::sleep_for(pause);
        }
    }

    // Reads until `expected` bytes arrived, the peer closed, or the receive timeout passed.
    std::string receive(std::size_t expected) {
        std::string out;
        char buf[1024];
        while (out.size() < expected) {
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            out.append(buf, static_cast<std::size_t>(n));
        }
        return out;
    }

    // True when the peer closed the connection (recv returns 0 or reset) within the timeout.
    bool closed_by_peer() {
        char c;
        const auto n = ::recv(fd_, &c, 1, 0);
        return n == 0 || (n < 0 && errno == ECONNRESET);
    }

  private:
    int fd_ = -1;
};

// Sends one message as an ECU does and returns the reply (the fake EMA answers with 17 bytes).
inline std::string upload(std::uint16_t port, const std::string& message, std::size_t piece = 0) {
    TcpClient client(port);
    client.send(message, piece);
    return client.receive(17);
}

// An upload sent from another loopback address (`from`), as another device on the LAN would.
inline std::string upload_from(const std::string& from, std::uint16_t port,
                               const std::string& message) {
    TcpClient client(port, std::chrono::seconds(5), from);
    client.send(message);
    return client.receive(17);
}

// For an upload whose answer may wait on the database's lock timeout, once or twice.
inline std::string slow_upload(std::uint16_t port, const std::string& message) {
    TcpClient client(port, std::chrono::seconds(15));
    client.send(message);
    return client.receive(17);
}

} // namespace test
