#include "ecu2mqtt/listener.hpp"

#include "ecu2mqtt/framing.hpp"

#include <utility> // before Asio: Boost 1.74 uses std::exchange without including it
#include <boost/asio.hpp>
#include <set>

namespace ecu2mqtt {

namespace asio = boost::asio;
using asio::ip::tcp;
using Steady = std::chrono::steady_clock;

namespace {

struct Connection {
    Connection(tcp::socket s, std::uint16_t port, std::string who)
        : socket(std::move(s)), timer(socket.get_executor()), local_port(port),
          peer(std::move(who)) {}

    tcp::socket socket;
    asio::steady_timer timer;
    std::uint16_t local_port;
    std::string peer;
    Steady::time_point deadline = Steady::time_point::max();
    bool mid_message = false; // bytes of an unfinished message are buffered, or a reply is out
    bool timed_out = false;

    void close() {
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        timer.cancel();
    }
};

std::string endpoint_text(const tcp::endpoint& ep) {
    const auto address = ep.address();
    return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
           std::to_string(ep.port());
}

} // namespace

struct Listener::Impl : std::enable_shared_from_this<Listener::Impl> {
    Impl(asio::io_context& io, ListenerConfig cfg, MessageHandler& h, Logger& l)
        : io(io), config(std::move(cfg)), handler(h), log(l) {}

    asio::io_context& io;
    ListenerConfig config;
    MessageHandler& handler;
    Logger& log;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::set<std::shared_ptr<Connection>> connections;
    std::vector<std::uint16_t> bound_ports;
    ListenerCounters counters;
    bool stopping = false;

    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::uint16_t port) {
        auto keep_alive = shared_from_this();
        for (;;) {
            boost::system::error_code ec;
            tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::operation_aborted || stopping)
                co_return;
            if (ec) {
                // Typically out of file descriptors: back off instead of spinning.
                log.warn("accept_failed", {{"port", std::to_string(port)}, {"error", ec.message()}});
                asio::steady_timer pause(io, std::chrono::milliseconds(100));
                co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            boost::system::error_code peer_ec;
            const auto remote = socket.remote_endpoint(peer_ec);
            std::string peer = peer_ec ? "unknown" : endpoint_text(remote);
            if (connections.size() >= config.max_connections) {
                ++counters.refused_over_limit;
                log.warn("connection_refused", {{"peer", peer},
                                                {"port", std::to_string(port)},
                                                {"reason", "max connections reached"},
                                                {"limit", std::to_string(config.max_connections)}});
                socket.close(peer_ec);
                continue;
            }
            ++counters.accepted;
            auto connection = std::make_shared<Connection>(std::move(socket), port, std::move(peer));
            connections.insert(connection);
            log.debug("connection_opened", {{"peer", connection->peer}, {"port", std::to_string(port)}});
            asio::co_spawn(io, serve(connection), asio::detached);
            asio::co_spawn(io, watchdog(connection), asio::detached);
        }
    }

    void touch(Connection& c, std::chrono::milliseconds allowance) {
        c.deadline = Steady::now() + allowance;
    }

    asio::awaitable<void> serve(std::shared_ptr<Connection> c) {
        auto keep_alive = shared_from_this();
        MessageFramer framer(config.max_message_bytes);
        std::array<char, 4096> buffer{};
        std::string why_closed = "closed by peer";
        try {
            while (c->socket.is_open()) {
                touch(*c, config.idle_timeout);
                const std::size_t n =
                    co_await c->socket.async_read_some(asio::buffer(buffer), asio::use_awaitable);
                framer.append(std::string_view(buffer.data(), n));
                bool keep_open = true;
                while (keep_open) {
                    Frame frame = framer.next();
                    if (frame.status == Frame::Status::NeedMore)
                        break;
                    if (frame.status == Frame::Status::TooLarge) {
                        ++counters.too_large;
                        why_closed = frame.reason;
                        keep_open = false;
                        break;
                    }
                    const auto reply =
                        handler.on_message({frame.message, c->local_port, c->peer});
                    if (!reply) {
                        keep_open = false;
                        why_closed = "no reply for this kind of message";
                        break;
                    }
                    c->mid_message = true;
                    co_await asio::async_write(c->socket, asio::buffer(*reply), asio::use_awaitable);
                }
                c->mid_message = framer.buffered() > 0;
                if (!keep_open || (stopping && !c->mid_message))
                    break;
            }
        } catch (const boost::system::system_error& e) {
            if (c->timed_out)
                why_closed = stopping ? "service shutting down" : "idle timeout";
            else if (e.code() != asio::error::eof)
                why_closed = e.code().message();
        }
        if (c->timed_out && !stopping)
            ++counters.idle_timeouts;
        if (framer.buffered() > 0) {
            const std::string leftover = framer.take_remainder();
            handler.on_incomplete({leftover, c->local_port, c->peer}, why_closed);
        }
        log.debug("connection_closed", {{"peer", c->peer}, {"port", std::to_string(c->local_port)},
                                        {"reason", why_closed}});
        c->close();
        connections.erase(c);
    }

    // Closes the connection once its deadline passes; the deadline moves with every read.
    asio::awaitable<void> watchdog(std::shared_ptr<Connection> c) {
        auto keep_alive = shared_from_this();
        while (c->socket.is_open()) {
            c->timer.expires_at(c->deadline);
            boost::system::error_code ec;
            co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (c->socket.is_open() && Steady::now() >= c->deadline) {
                c->timed_out = true;
                c->close();
            }
        }
    }

    void stop() {
        stopping = true;
        for (auto& acceptor : acceptors) {
            boost::system::error_code ignored;
            acceptor->close(ignored);
        }
        const auto grace_end = Steady::now() + config.shutdown_grace;
        for (const auto& c : connections) {
            if (!c->mid_message) {
                c->timed_out = true;
                c->close();
            } else if (c->deadline > grace_end) {
                c->deadline = grace_end;
                c->timer.cancel(); // the watchdog re-arms on the earlier deadline
            }
        }
    }
};

Listener::Listener(asio::io_context& io, ListenerConfig config, MessageHandler& handler,
                   Logger& log)
    : impl_(std::make_shared<Impl>(io, std::move(config), handler, log)) {}

Listener::~Listener() {
    if (impl_)
        impl_->stop();
}

void Listener::start() {
    const auto address = asio::ip::make_address(impl_->config.address);
    for (const auto port : impl_->config.ports) {
        auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
        const tcp::endpoint endpoint(address, port);
        try {
            acceptor->open(endpoint.protocol());
            acceptor->set_option(tcp::acceptor::reuse_address(true));
            if (address.is_v6())
                acceptor->set_option(asio::ip::v6_only(false));
            acceptor->bind(endpoint);
            acceptor->listen(asio::socket_base::max_listen_connections);
        } catch (const boost::system::system_error& e) {
            throw std::system_error(e.code(), "cannot listen on " + endpoint_text(endpoint));
        }
        const auto bound = acceptor->local_endpoint().port();
        impl_->log.info("listening", {{"address", impl_->config.address},
                                      {"port", std::to_string(bound)}});
        impl_->bound_ports.push_back(bound);
        impl_->acceptors.push_back(std::move(acceptor));
    }
    for (std::size_t i = 0; i < impl_->acceptors.size(); ++i)
        asio::co_spawn(impl_->io, impl_->accept_loop(*impl_->acceptors[i], impl_->bound_ports[i]),
                       asio::detached);
}

void Listener::stop() { impl_->stop(); }

std::vector<std::uint16_t> Listener::bound_ports() const { return impl_->bound_ports; }

std::size_t Listener::open_connections() const { return impl_->connections.size(); }
ListenerCounters Listener::counters() const { return impl_->counters; }

} // namespace ecu2mqtt
