#include "local_api_exchange.hpp"

#include "ecu2mqtt/protocol/local_api.hpp"

#include <array>

namespace ecu2mqtt {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// The biggest plant's real-time reply is a few KB; more is no reply of an ECU.
constexpr std::size_t kMaxReplyBytes = 64 * 1024;

} // namespace

asio::awaitable<LocalExchange> exchange_with_ecu(asio::io_context& io, const PollTarget& where,
                                                 const std::string& request,
                                                 std::chrono::milliseconds connect_timeout,
                                                 std::chrono::milliseconds timeout) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(where.host, ec);
    if (ec)
        co_return LocalExchange{std::nullopt, "bad address"};
    auto socket = std::make_shared<tcp::socket>(io);
    asio::steady_timer timer(io);
    const auto arm = [&](std::chrono::milliseconds limit) {
        timer.expires_after(limit);
        timer.async_wait([socket](boost::system::error_code e) {
            if (!e) {
                boost::system::error_code ignored;
                socket->close(ignored);
            }
        });
    };
    const auto timed_out = [&] { return !socket->is_open(); };
    arm(std::min(connect_timeout, timeout));
    co_await socket->async_connect(tcp::endpoint(address, where.port),
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return LocalExchange{std::nullopt, timed_out() ? "timed out connecting"
                                                          : "cannot connect: " + ec.message()};
    arm(timeout);
    co_await asio::async_write(*socket, asio::buffer(request),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
        co_return LocalExchange{std::nullopt, "closed while sending: " + ec.message()};
    arm(timeout); // the whole reply within one timeout
    std::string reply;
    std::array<char, 2048> buffer{};
    while (!local_reply_complete(reply)) {
        const auto n = co_await socket->async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        reply.append(buffer.data(), n);
        if (reply.size() > kMaxReplyBytes) {
            timer.cancel();
            co_return LocalExchange{std::nullopt, "reply longer than " +
                                                      std::to_string(kMaxReplyBytes) + " bytes"};
        }
        if (ec) {
            if (timed_out())
                co_return LocalExchange{std::nullopt, "timed out waiting for the reply (" +
                                                          std::to_string(reply.size()) +
                                                          " bytes came)"};
            if (reply.empty())
                co_return LocalExchange{std::nullopt, "closed without a reply"};
            break; // closed after answering: decoded as far as it goes
        }
    }
    timer.cancel();
    boost::system::error_code ignored;
    socket->close(ignored);
    co_return LocalExchange{std::move(reply), {}};
}

} // namespace ecu2mqtt
