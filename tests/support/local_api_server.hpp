// A stand-in for an ECU's port 8899 on loopback: answers the three read-only requests from the
// real replies in tests/data/port8899, and misbehaves on request as ECUs in the field do.
#pragma once

#include "support/port8899_fixtures.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace test {

enum class LocalApiBehaviour {
    Answer,   // the fixture's reply, then close
    Silent,   // accept, read the request, send nothing
    NoEnd,    // the reply without its trailing END\n (a 2025 ECU-R firmware), then close
    Truncate, // the first half of the reply, then close
};

// An ECU-info reply (0001) of the fixtures with its zone name `Etc/GMT-8` replaced by `zone`, its
// length fields set to match.
inline std::string ecu_info_with_zone(std::string reply, const std::string& zone) {
    const auto at = reply.find("009Etc/GMT-8");
    if (at == std::string::npos)
        throw std::runtime_error("no zone Etc/GMT-8 in that reply");
    const auto length = std::to_string(zone.size());
    reply.replace(at, 12, std::string(3 - length.size(), '0') + length + zone);
    const auto frame = std::to_string(reply.size() - 1);
    return reply.replace(5, 4, std::string(4 - frame.size(), '0') + frame);
}

class LocalApiServer {
  public:
    // Replies of the ECU-R 2160 with six QT2s (ECU id 216000000001).
    explicit LocalApiServer(boost::asio::io_context& io)
        : io_(io), acceptor_(std::make_shared<boost::asio::ip::tcp::acceptor>(io)) {
        replies_["0001"] = port8899_reply("ksh210_ecu-r2160_qt2_0001.hex");
        replies_["0002"] = port8899_reply("ksh210_ecu-r2160_qt2_0002.hex");
        replies_["0030"] = port8899_reply("ksh210_ecu-r2160_qt2_0030.hex");
        listen(0);
    }
    ~LocalApiServer() { refuse(); }

    std::uint16_t port() const { return port_; }
    void set_behaviour(LocalApiBehaviour behaviour) { behaviour_ = behaviour; }
    // Silent on this one command ("0002") while the others are answered.
    void silent_on(const std::string& command) { silent_commands_.insert(command); }
    // Answers this command only after `delay` (the reply as it was when asked).
    void delay_on(const std::string& command, std::chrono::milliseconds delay) {
        delays_[command] = delay;
    }
    // After this many ECU-info requests (one per poll) have been answered, silent for good.
    void wedge_after(int polls) {
        wedge_after_ = polls;
        info_requests_ = 0;
        wedged_ = false;
    }
    // Stops listening: connections are refused until answer_again().
    void refuse() {
        boost::system::error_code ignored;
        acceptor_->close(ignored);
    }
    void answer_again() { listen(port_); }
    // The reply to `command` ("0001", "0002", "0030") from now on.
    void set_reply(const std::string& command, std::string reply) {
        replies_[command] = std::move(reply);
    }
    const std::string& reply(const std::string& command) { return replies_[command]; }

    const std::vector<std::string>& requests() const { return *requests_; }

  private:
    void listen(std::uint16_t port) {
        namespace asio = boost::asio;
        using asio::ip::tcp;
        acceptor_ = std::make_shared<tcp::acceptor>(io_);
        const tcp::endpoint where(asio::ip::make_address("127.0.0.1"), port);
        acceptor_->open(where.protocol());
        acceptor_->set_option(tcp::acceptor::reuse_address(true));
        acceptor_->bind(where);
        acceptor_->listen();
        port_ = acceptor_->local_endpoint().port();
        asio::co_spawn(io_, accept(acceptor_), asio::detached);
    }

    boost::asio::awaitable<void> accept(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor) {
        namespace asio = boost::asio;
        for (;;) {
            boost::system::error_code ec;
            auto socket =
                co_await acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
        }
    }

    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket) {
        namespace asio = boost::asio;
        boost::system::error_code ec;
        std::string request;
        std::array<char, 256> buffer{};
        while (!request.ends_with("END\n") && request.size() < 256) {
            const auto n = co_await socket.async_read_some(
                asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
            request.append(buffer.data(), n);
            if (ec)
                co_return;
        }
        requests_->push_back(request);
        const auto command = request.size() >= 13 ? request.substr(9, 4) : std::string();
        auto behaviour = behaviour_;
        if (command == "0001" && wedge_after_ >= 0 && ++info_requests_ > wedge_after_)
            wedged_ = true;
        if (wedged_ || silent_commands_.contains(command))
            behaviour = LocalApiBehaviour::Silent;
        std::string reply = replies_.count(command) ? replies_[command] : "";
        if (behaviour == LocalApiBehaviour::Silent) {
            // Holds the connection open until the poller gives up and closes it.
            co_await socket.async_read_some(asio::buffer(buffer),
                                            asio::redirect_error(asio::use_awaitable, ec));
            co_return;
        }
        if (behaviour == LocalApiBehaviour::NoEnd && reply.ends_with("END\n"))
            reply.resize(reply.size() - 4);
        if (behaviour == LocalApiBehaviour::Truncate)
            reply.resize(reply.size() / 2);
        if (const auto delay = delays_.find(command); delay != delays_.end()) {
            asio::steady_timer wait(io_, delay->second);
            co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_await asio::async_write(socket, asio::buffer(reply),
                                   asio::redirect_error(asio::use_awaitable, ec));
        socket.close(ec);
    }

    boost::asio::io_context& io_;
    std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
    std::uint16_t port_ = 0;
    std::map<std::string, std::string> replies_;
    LocalApiBehaviour behaviour_ = LocalApiBehaviour::Answer;
    std::set<std::string> silent_commands_;
    std::map<std::string, std::chrono::milliseconds> delays_;
    int wedge_after_ = -1;
    int info_requests_ = 0;
    bool wedged_ = false;
    std::shared_ptr<std::vector<std::string>> requests_ =
        std::make_shared<std::vector<std::string>>();
};

} // namespace test
