#include "ecu2mqtt/net/ema_forwarder.hpp"

#include "ecu2mqtt/protocol/dns_message.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <random>

namespace ecu2mqtt {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using Steady = std::chrono::steady_clock;

namespace {

std::pair<std::string, std::optional<std::uint16_t>> split_host_port(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) // no port, or a bare IPv6 address
        return {text, std::nullopt};
    const auto port_text = text.substr(colon + 1);
    unsigned long port = 0;
    try {
        port = std::stoul(port_text);
    } catch (const std::exception&) {
        port = 0;
    }
    if (port == 0 || port > 65535 || port_text.find_first_not_of("0123456789") != std::string::npos)
        throw std::invalid_argument("bad port in \"" + text + "\"");
    return {text.substr(0, colon), static_cast<std::uint16_t>(port)};
}

// Closes `socket` when the timer fires; re-armed by the caller for each step.
template <class Socket> void close_on_expiry(asio::steady_timer& timer, Socket& socket) {
    timer.async_wait([&socket](boost::system::error_code ec) {
        if (!ec) {
            boost::system::error_code ignored;
            socket.close(ignored);
        }
    });
}

} // namespace

ForwarderConfig parse_forward_target(const std::string& text) {
    ForwarderConfig config;
    const auto [host, port] = split_host_port(text);
    if (host.empty())
        throw std::invalid_argument("expected HOST[:PORT], got \"" + text + "\"");
    config.host = host;
    config.port = port;
    return config;
}

asio::awaitable<UpstreamReply> EmaForwarder::exchange(std::uint16_t local_port,
                                                      std::string message) {
    const auto deadline = Steady::now() + config_.timeout;
    const std::uint16_t port = config_.port.value_or(local_port);
    asio::steady_timer timer(executor_);

    // 1. Where EMA is.
    std::optional<asio::ip::address> address;
    boost::system::error_code ec;
    const auto literal = asio::ip::make_address(config_.host, ec);
    if (!ec) {
        address = literal;
    } else if (!config_.resolver.empty()) {
        const auto [resolver_host, resolver_port] = split_host_port(config_.resolver);
        udp::socket dns(executor_);
        dns.open(udp::v4(), ec);
        const std::uint16_t id = static_cast<std::uint16_t>(std::random_device{}());
        const auto query = dns_a_query(id, config_.host);
        const udp::endpoint server(asio::ip::make_address(resolver_host, ec),
                                   resolver_port.value_or(53));
        if (ec)
            co_return UpstreamReply{std::nullopt, "bad resolver address " + config_.resolver};
        timer.expires_at(deadline);
        close_on_expiry(timer, dns);
        co_await dns.async_send_to(asio::buffer(query), server,
                                   asio::redirect_error(asio::use_awaitable, ec));
        std::vector<std::uint8_t> answer(1500);
        std::size_t n = 0;
        if (!ec)
            n = co_await dns.async_receive(asio::buffer(answer),
                                           asio::redirect_error(asio::use_awaitable, ec));
        timer.cancel();
        if (ec)
            co_return UpstreamReply{std::nullopt,
                                    "no answer from the resolver " + config_.resolver};
        answer.resize(n);
        const auto found = dns_a_answers(id, answer);
        if (found.empty())
            co_return UpstreamReply{std::nullopt,
                                    "the resolver knows no address for " + config_.host};
        address = asio::ip::address_v4(found.front());
    } else {
        tcp::resolver resolver(executor_);
        timer.expires_at(deadline);
        timer.async_wait([&resolver](boost::system::error_code e) {
            if (!e)
                resolver.cancel();
        });
        const auto results = co_await resolver.async_resolve(
            config_.host, std::to_string(port), asio::redirect_error(asio::use_awaitable, ec));
        timer.cancel();
        if (ec || results.empty())
            co_return UpstreamReply{std::nullopt, "cannot resolve " + config_.host};
        address = results.begin()->endpoint().address();
    }

    // 2. The conversation: send the message, collect the reply until EMA closes or goes quiet.
    tcp::socket socket(executor_);
    timer.expires_at(deadline);
    close_on_expiry(timer, socket);
    co_await socket.async_connect(tcp::endpoint(*address, port),
                                  asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return UpstreamReply{std::nullopt, Steady::now() >= deadline
                                                  ? "timed out connecting"
                                                  : "unreachable: " + ec.message()};
    co_await asio::async_write(socket, asio::buffer(message),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return UpstreamReply{std::nullopt, "closed while sending: " + ec.message()};
    std::string reply;
    std::array<char, 2048> buffer{};
    for (;;) {
        if (!reply.empty()) { // re-arm: quiet period after data, never past the deadline
            timer.expires_at(std::min(deadline, Steady::now() + config_.quiet));
            close_on_expiry(timer, socket);
        }
        const std::size_t n = co_await socket.async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        reply.append(buffer.data(), n);
        if (!ec)
            continue;
        if (!reply.empty())
            break; // EMA closed, or went quiet, after answering
        co_return UpstreamReply{std::nullopt, Steady::now() >= deadline
                                                  ? "timed out waiting for the reply"
                                                  : "closed without a reply"};
    }
    timer.cancel();
    log_.debug("ema_reply",
               {{"port", std::to_string(port)}, {"bytes", std::to_string(reply.size())}});
    co_return UpstreamReply{std::move(reply), {}};
}

} // namespace ecu2mqtt
