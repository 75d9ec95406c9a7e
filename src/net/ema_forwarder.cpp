#include "ecu2mqtt/net/ema_forwarder.hpp"

#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/net/self_forwarding.hpp"
#include "ecu2mqtt/protocol/dns_message.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <algorithm>
#include <random>

namespace ecu2mqtt {

// GCC 12 takes the frame deallocation of a coroutine that awaits other coroutines for a
// mismatched new/delete pair (a false positive, gone in GCC 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

constexpr std::size_t kMaxReplyBytes = 64 * 1024;

// Closes `socket` when the timer fires; re-armed by the caller for each step. The handler shares
// ownership of the socket: a firing already queued when the exchange ends must not touch a
// socket that the exchange has destroyed.
template <class Socket>
void close_on_expiry(asio::steady_timer& timer, std::shared_ptr<Socket> socket) {
    timer.async_wait([socket = std::move(socket)](boost::system::error_code ec) {
        if (!ec) {
            boost::system::error_code ignored;
            socket->close(ignored);
        }
    });
}

// A system resolver lookup the exchange can walk away from. getaddrinfo blocks and cannot be
// interrupted; at the deadline the exchange stops waiting, and a late answer lands here, kept
// alive by the completion handler alone.
struct PendingLookup {
    explicit PendingLookup(const asio::any_io_executor& executor)
        : resolver(executor), done(executor) {}
    tcp::resolver resolver;
    asio::steady_timer done; // expires at the deadline; cancelled when the answer is in
    bool answered = false;
    boost::system::error_code error;
    std::optional<asio::ip::address> address;
};

} // namespace

ForwarderConfig parse_forward_target(const std::string& text) {
    const auto target = parse_host_port(text); // throws std::invalid_argument
    ForwarderConfig config;
    config.host = target.host;
    config.port = target.port;
    return config;
}

asio::awaitable<std::optional<asio::ip::address>>
EmaForwarder::resolve_with_system(std::uint16_t port, Steady::time_point deadline,
                                  std::string& why) {
    auto lookup = std::make_shared<PendingLookup>(executor_);
    lookup->done.expires_at(deadline);
    lookup->resolver.async_resolve(
        config_.host, std::to_string(port),
        [lookup](boost::system::error_code ec, const tcp::resolver::results_type& results) {
            lookup->answered = true;
            lookup->error = ec;
            if (!ec && !results.empty())
                lookup->address = results.begin()->endpoint().address();
            lookup->done.cancel();
        });
    boost::system::error_code ec;
    co_await lookup->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!lookup->answered) {
        lookup->resolver.cancel(); // a lookup still queued is dropped; a running one is ignored
        why = "timed out resolving " + config_.host;
        co_return std::nullopt;
    }
    if (!lookup->address)
        why = "cannot resolve " + config_.host +
              (lookup->error ? ": " + lookup->error.message() : std::string());
    co_return lookup->address;
}

asio::awaitable<std::optional<asio::ip::address>>
EmaForwarder::resolve_with_server(Steady::time_point deadline, std::string& why) {
    HostPort server_text;
    boost::system::error_code ec;
    try {
        server_text = parse_host_port(config_.resolver);
    } catch (const std::invalid_argument& e) {
        why = std::string("bad resolver: ") + e.what();
        co_return std::nullopt;
    }
    const auto server_address = asio::ip::make_address(server_text.host, ec);
    if (ec) {
        why = "bad resolver address " + config_.resolver;
        co_return std::nullopt;
    }
    const udp::endpoint server(server_address, server_text.port.value_or(53));
    const auto id = static_cast<std::uint16_t>(std::random_device{}());
    std::vector<std::uint8_t> query;
    try {
        query = dns_a_query(id, config_.host);
    } catch (const std::invalid_argument& e) {
        why = "cannot ask the resolver for " + config_.host + ": " + e.what();
        co_return std::nullopt;
    }
    auto dns = std::make_shared<udp::socket>(executor_);
    dns->open(server.protocol(), ec);
    if (ec) {
        why = "cannot open a socket to the resolver: " + ec.message();
        co_return std::nullopt;
    }
    asio::steady_timer timer(executor_);
    timer.expires_at(deadline);
    close_on_expiry(timer, dns);
    co_await dns->async_send_to(asio::buffer(query), server,
                                asio::redirect_error(asio::use_awaitable, ec));
    std::vector<std::uint8_t> answer(1500);
    std::size_t n = 0;
    if (!ec)
        n = co_await dns->async_receive(asio::buffer(answer),
                                        asio::redirect_error(asio::use_awaitable, ec));
    timer.cancel();
    if (ec) {
        why = "no answer from the resolver " + config_.resolver;
        co_return std::nullopt;
    }
    answer.resize(n);
    const auto found = dns_a_answers(id, answer);
    if (found.empty()) {
        why = "the resolver knows no address for " + config_.host;
        co_return std::nullopt;
    }
    co_return asio::ip::address_v4(found.front());
}

asio::awaitable<UpstreamReply> EmaForwarder::exchange(std::uint16_t local_port,
                                                      std::string message) {
    const auto deadline = Steady::now() + config_.timeout;
    const std::uint16_t port = config_.port.value_or(local_port);

    // 1. Where EMA is.
    std::optional<asio::ip::address> address;
    std::string why;
    boost::system::error_code ec;
    const auto literal = asio::ip::make_address(config_.host, ec);
    if (!ec)
        address = literal;
    else if (!config_.resolver.empty())
        address = co_await resolve_with_server(deadline, why);
    else
        address = co_await resolve_with_system(port, deadline, why);
    if (!address)
        co_return UpstreamReply{std::nullopt, why};
    if (std::find(config_.listen_ports.begin(), config_.listen_ports.end(), port) !=
            config_.listen_ports.end() &&
        reaches_listener(*address, config_.listen_address))
        co_return UpstreamReply{
            std::nullopt, "loop: " + config_.host + " now resolves to " + address->to_string() +
                              ", this service itself (the local DNS points it here); not "
                              "forwarded. Give --ema-resolver (a DNS server that does not "
                              "rewrite it) or EMA's address"};

    // 2. The conversation: send the message, collect the reply until EMA closes or goes quiet.
    auto socket = std::make_shared<tcp::socket>(executor_);
    asio::steady_timer timer(executor_);
    timer.expires_at(deadline);
    close_on_expiry(timer, socket);
    co_await socket->async_connect(tcp::endpoint(*address, port),
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return UpstreamReply{std::nullopt, Steady::now() >= deadline
                                                  ? "timed out connecting"
                                                  : "unreachable: " + ec.message()};
    co_await asio::async_write(*socket, asio::buffer(message),
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
        const std::size_t n = co_await socket->async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        reply.append(buffer.data(), n);
        if (reply.size() > kMaxReplyBytes) {
            // EMA's acknowledgement is 17 bytes: this is not one, and must not fill memory.
            timer.cancel();
            co_return UpstreamReply{std::nullopt, "reply longer than " +
                                                      std::to_string(kMaxReplyBytes) +
                                                      " bytes: not relayed"};
        }
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
