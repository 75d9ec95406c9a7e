// A loopback TCP proxy in front of a broker that a test can make lose what the broker says
// (its acknowledgements) and then cut, as a network that fails half-way does.
#pragma once

#include "net.hpp"

#include <atomic>
#include <mutex>
#include <poll.h>
#include <thread>
#include <vector>

namespace test {

class CuttingProxy {
  public:
    explicit CuttingProxy(std::uint16_t broker_port) : broker_port_(broker_port) {
        std::tie(listen_fd_, port_) = bound_loopback_socket(SOCK_STREAM);
        if (::listen(listen_fd_, 8) != 0)
            throw std::runtime_error("cannot listen on the proxy's port");
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~CuttingProxy() {
        stopping_ = true;
        ::shutdown(listen_fd_, SHUT_RDWR);
        acceptor_.join();
        cut();
        ::close(listen_fd_);
    }
    CuttingProxy(const CuttingProxy&) = delete;
    CuttingProxy& operator=(const CuttingProxy&) = delete;

    std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }

    // While on, what the broker sends is dropped; what the client sends still reaches it.
    void drop_from_broker(bool on) { dropping_ = on; }
    // While non-zero, each piece the broker sends is held this long first (a slow link or a
    // broker busy after a restart).
    void delay_from_broker(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }

    // Closes every connection through the proxy; new ones are taken as before.
    void cut() {
        std::vector<std::thread> pumps;
        {
            std::lock_guard lock(mutex_);
            for (const auto& [client, broker] : pairs_) {
                ::shutdown(client, SHUT_RDWR);
                ::shutdown(broker, SHUT_RDWR);
            }
            pumps.swap(pumps_);
        }
        for (auto& pump : pumps)
            pump.join();
        std::lock_guard lock(mutex_);
        for (const auto& [client, broker] : pairs_) {
            ::close(client);
            ::close(broker);
        }
        pairs_.clear();
    }

  private:
    void accept_loop() {
        while (!stopping_) {
            const int client = ::accept(listen_fd_, nullptr, nullptr);
            if (client < 0)
                return;
            const int broker = connect_loopback(broker_port_);
            if (broker < 0) {
                ::close(client);
                continue;
            }
            std::lock_guard lock(mutex_);
            pairs_.emplace_back(client, broker);
            pumps_.emplace_back([this, client, broker] { pump(client, broker); });
        }
    }

    void pump(int client, int broker) {
        pollfd fds[2] = {{client, POLLIN, 0}, {broker, POLLIN, 0}};
        char buf[16384];
        while (::poll(fds, 2, 100) >= 0 && !stopping_) {
            for (int i = 0; i < 2; ++i) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                const auto n = ::recv(fds[i].fd, buf, sizeof buf, 0);
                if (n <= 0)
                    return;
                const bool from_broker = i == 1;
                if (from_broker && dropping_)
                    continue;
                if (from_broker && delay_ms_ > 0)
                    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
                const int to = from_broker ? client : broker;
                if (::send(to, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n)
                    return;
            }
        }
    }

    std::uint16_t broker_port_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> dropping_{false};
    std::atomic<long> delay_ms_{0};
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<std::pair<int, int>> pairs_;
    std::vector<std::thread> pumps_;
};

} // namespace test
