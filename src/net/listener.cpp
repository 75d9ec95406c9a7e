#include "ecu2mqtt/net/listener.hpp"

#include "ecu2mqtt/net/host_port.hpp"

#include "ecu2mqtt/net/ema_forwarder.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/ema_reply.hpp"
#include "ecu2mqtt/protocol/framing.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <algorithm>
#include <functional>
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
    Steady::time_point opened = Steady::now();
    Steady::time_point last_activity = Steady::now();
    bool mid_message = false; // bytes of an unfinished message are buffered, or a reply is out
    bool timed_out = false;
    const char* closed_because = nullptr; // set by whoever closes it from outside

    void close() {
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        timer.cancel();
    }
};

// An address or CIDR range a peer must fall in.
struct PeerRange {
    asio::ip::address network;
    unsigned prefix_bits;

    bool contains(asio::ip::address peer) const {
        if (peer.is_v6() && peer.to_v6().is_v4_mapped())
            peer = asio::ip::make_address_v4(asio::ip::v4_mapped, peer.to_v6());
        if (peer.is_v4() != network.is_v4())
            return false;
        const auto a = bytes_of(peer), b = bytes_of(network);
        for (unsigned bit = 0; bit < prefix_bits; ++bit) {
            const auto mask = static_cast<unsigned char>(0x80 >> (bit % 8));
            if ((a[bit / 8] & mask) != (b[bit / 8] & mask))
                return false;
        }
        return true;
    }

    static std::vector<unsigned char> bytes_of(const asio::ip::address& address) {
        if (address.is_v4()) {
            const auto bytes = address.to_v4().to_bytes();
            return {bytes.begin(), bytes.end()};
        }
        const auto bytes = address.to_v6().to_bytes();
        return {bytes.begin(), bytes.end()};
    }
};

PeerRange parse_peer_range(const std::string& text) {
    const auto slash = text.find('/');
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(text.substr(0, slash), ec);
    if (ec)
        throw std::invalid_argument("not an address or CIDR range: \"" + text + "\"");
    const unsigned max_bits = address.is_v4() ? 32 : 128;
    unsigned bits = max_bits;
    if (slash != std::string::npos) {
        try {
            bits = static_cast<unsigned>(std::stoul(text.substr(slash + 1)));
        } catch (const std::exception&) {
            bits = max_bits + 1;
        }
        if (bits > max_bits)
            throw std::invalid_argument("bad prefix length in \"" + text + "\"");
    }
    return {address, bits};
}

// The answer when the handler failed on a message: the fake EMA's rule for a message carrying a
// timestamp, so the ECU is not left waiting. Without a timestamp the right time is not known
// here (it depends on what this ECU was last told), and the connection is closed instead.
std::optional<std::string> last_resort_reply(std::string_view raw) {
    if (!raw.starts_with("APS"))
        return std::nullopt;
    const auto message_time = guess_timestamp(raw);
    if (!message_time)
        return std::nullopt;
    ReplyInput input;
    input.message_time = message_time;
    input.local_now = *message_time;
    const auto reply = fake_ema_reply(input);
    if (reply.rule == ReplyRule::NoReply)
        return std::nullopt;
    return reply.bytes;
}

std::string error_text(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

std::string endpoint_text(const tcp::endpoint& ep) {
    const auto address = ep.address();
    return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
           std::to_string(ep.port());
}

} // namespace

struct Listener::Impl : std::enable_shared_from_this<Listener::Impl> {
    Impl(asio::io_context& io, ListenerConfig cfg, MessageHandler& h, Logger& l, EmaForwarder* f)
        : io(io), config(std::move(cfg)), handler(h), log(l), forwarder(f) {}

    asio::io_context& io;
    ListenerConfig config;
    MessageHandler& handler;
    Logger& log;
    EmaForwarder* forwarder;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::set<std::shared_ptr<Connection>> connections;
    std::vector<std::uint16_t> bound_ports;
    std::vector<PeerRange> allowed_peers;
    ListenerCounters counters;
    bool stopping = false;

    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::uint16_t port) {
        auto keep_alive = shared_from_this();
        for (;;) {
            boost::system::error_code ec;
            tcp::socket socket =
                co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::operation_aborted || stopping)
                co_return;
            if (ec) {
                // Typically out of file descriptors: back off instead of spinning.
                log.warn("accept_failed",
                         {{"port", std::to_string(port)}, {"error", ec.message()}});
                asio::steady_timer pause(io, std::chrono::milliseconds(100));
                co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                continue;
            }
            boost::system::error_code peer_ec;
            const auto remote = socket.remote_endpoint(peer_ec);
            std::string peer = peer_ec ? "unknown" : endpoint_text(remote);
            if (peer_ec || !peer_allowed(remote.address())) {
                ++counters.refused_peers;
                log.warn("connection_refused", {{"peer", peer},
                                                {"port", std::to_string(port)},
                                                {"reason", "not in the allow-list"}});
                socket.close(peer_ec);
                continue;
            }
            if (connections.size() >= config.max_connections)
                evict_least_active(peer);
            ++counters.accepted;
            auto connection =
                std::make_shared<Connection>(std::move(socket), port, std::move(peer));
            connections.insert(connection);
            log.debug("connection_opened",
                      {{"peer", connection->peer}, {"port", std::to_string(port)}});
            asio::co_spawn(io, serve(connection), report_failure("serve", connection));
            asio::co_spawn(io, watchdog(connection), report_failure("watchdog", connection));
        }
    }

    // Completion of a coroutine: an exception that escaped it is logged with the peer, and the
    // connection closed and forgotten, instead of vanishing unseen.
    std::function<void(std::exception_ptr)> report_failure(std::string_view task,
                                                           std::shared_ptr<Connection> c) {
        return [self = shared_from_this(), task, c = std::move(c)](std::exception_ptr error) {
            if (!error)
                return;
            self->log.error("connection_failed", {{"peer", c ? c->peer : "none"},
                                                  {"port", c ? std::to_string(c->local_port) : ""},
                                                  {"task", std::string(task)},
                                                  {"error", error_text(error)}});
            if (c) {
                c->close();
                self->connections.erase(c);
            }
        };
    }

    bool peer_allowed(const asio::ip::address& address) const {
        if (allowed_peers.empty())
            return true;
        return std::any_of(allowed_peers.begin(), allowed_peers.end(),
                           [&](const PeerRange& r) { return r.contains(address); });
    }

    void evict_least_active(const std::string& newcomer) {
        auto oldest = connections.end();
        for (auto it = connections.begin(); it != connections.end(); ++it)
            if (oldest == connections.end() || (*it)->last_activity < (*oldest)->last_activity)
                oldest = it;
        if (oldest == connections.end())
            return;
        auto victim = *oldest;
        connections.erase(oldest); // counts as gone now; its coroutine finishes on its own
        ++counters.evicted_at_limit;
        // Warn on the first eviction and then every 1000th: a flood must not flood the log too.
        if (counters.evicted_at_limit % 1000 == 1)
            log.warn("connection_evicted",
                     {{"peer", victim->peer},
                      {"for", newcomer},
                      {"reason", "max connections reached"},
                      {"limit", std::to_string(config.max_connections)},
                      {"evicted_total", std::to_string(counters.evicted_at_limit)}});
        victim->closed_because = "evicted: max connections reached";
        victim->close();
    }

    void touch(Connection& c, std::chrono::milliseconds allowance) {
        c.last_activity = Steady::now();
        c.deadline = std::min(c.last_activity + allowance, c.opened + config.max_connection_age);
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
                    InboundMessage inbound{frame.message, c->local_port, c->peer};
                    const auto reply = co_await answer(*c, inbound);
                    if (!reply) {
                        keep_open = false;
                        why_closed = "no reply for this kind of message";
                        break;
                    }
                    c->mid_message = true;
                    co_await asio::async_write(c->socket, asio::buffer(*reply),
                                               asio::use_awaitable);
                }
                c->mid_message = framer.buffered() > 0;
                if (!keep_open || (stopping && !c->mid_message))
                    break;
            }
        } catch (const boost::system::system_error& e) {
            if (c->closed_because)
                why_closed = c->closed_because;
            else if (c->timed_out)
                why_closed = stopping ? "service shutting down" : "idle timeout";
            else if (e.code() != asio::error::eof)
                why_closed = e.code().message();
        } catch (const std::exception& e) {
            why_closed = std::string("failed: ") + e.what();
            log.error(
                "connection_failed",
                {{"peer", c->peer}, {"port", std::to_string(c->local_port)}, {"error", e.what()}});
        }
        if (c->timed_out && !stopping && !c->closed_because)
            ++counters.idle_timeouts;
        if (framer.buffered() > 0) {
            const std::string leftover = framer.take_remainder();
            try {
                handler.on_incomplete({leftover, c->local_port, c->peer}, why_closed);
            } catch (const std::exception& e) {
                log.error("message_handling_failed", {{"ecu", guess_ecu_id(leftover).value_or("")},
                                                      {"peer", c->peer},
                                                      {"port", std::to_string(c->local_port)},
                                                      {"error", e.what()}});
            }
        }
        log.debug(
            "connection_closed",
            {{"peer", c->peer}, {"port", std::to_string(c->local_port)}, {"reason", why_closed}});
        c->close();
        connections.erase(c);
    }

    // What the ECU gets for one message: EMA's reply through the handler in full proxy mode, else
    // the handler's own. Whatever fails on the way is logged with the ECU and the peer, and the
    // ECU still gets the fake reply when one is due.
    asio::awaitable<std::optional<std::string>> answer(Connection& c, InboundMessage& inbound) {
        const auto failed = [&](std::string_view step, const std::string& error) {
            log.error("message_handling_failed", {{"ecu", guess_ecu_id(inbound.raw).value_or("")},
                                                  {"peer", c.peer},
                                                  {"port", std::to_string(c.local_port)},
                                                  {"step", std::string(step)},
                                                  {"error", error}});
        };
        std::string error;
        bool upstream = false;
        try {
            upstream = forwarder && handler.wants_upstream(inbound);
        } catch (const std::exception& e) {
            failed("wants_upstream", e.what());
        }
        if (upstream) {
            c.mid_message = true; // the ECU is owed an answer
            inbound.forwarded = true;
            bool forward_failed = false;
            try {
                auto reply = co_await forwarder->exchange(c.local_port, std::string(inbound.raw));
                inbound.upstream_reply = std::move(reply.bytes);
                inbound.upstream_failure = std::move(reply.failure);
            } catch (const std::exception& e) {
                forward_failed = true;
                error = e.what();
            }
            if (forward_failed) { // as if EMA had not answered: the handler sends the fake reply
                failed("forward", error);
                inbound.upstream_reply.reset();
                inbound.upstream_failure = "forwarding failed: " + error;
            }
        }
        try {
            co_return co_await handled(inbound);
        } catch (const std::exception& e) {
            error = e.what();
        }
        failed("handle", error);
        co_return last_resort_reply(inbound.raw);
    }

    // The handler's reply, whenever it comes. It is always delivered through the io context:
    // a coroutine must not be resumed from inside the call that suspends it. What the handler
    // throws is rethrown here, in the coroutine.
    asio::awaitable<std::optional<std::string>> handled(const InboundMessage& inbound) {
        using Signature = void(std::exception_ptr, std::optional<std::string>);
        co_return co_await asio::async_initiate<decltype(asio::use_awaitable), Signature>(
            [this, &inbound](auto completion) {
                auto shared = std::make_shared<decltype(completion)>(std::move(completion));
                const auto deliver = [&io = io, shared](std::exception_ptr error,
                                                        std::optional<std::string> reply) {
                    asio::post(io, [shared, error, reply = std::move(reply)]() mutable {
                        (*shared)(error, std::move(reply));
                    });
                };
                try {
                    handler.on_message(inbound, [deliver](std::optional<std::string> reply) {
                        deliver(nullptr, std::move(reply));
                    });
                } catch (...) {
                    deliver(std::current_exception(), std::nullopt);
                }
            },
            asio::use_awaitable);
    }

    // Closes the connection once its deadline passes; the deadline moves with every read.
    asio::awaitable<void> watchdog(std::shared_ptr<Connection> c) {
        auto keep_alive = shared_from_this();
        while (c->socket.is_open()) {
            c->timer.expires_at(c->deadline);
            boost::system::error_code ec;
            co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            const auto now = Steady::now();
            if (c->socket.is_open() && now >= c->deadline) {
                c->timed_out = true;
                if (now >= c->opened + config.max_connection_age) {
                    c->closed_because = "open too long";
                    ++counters.too_old;
                }
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
                   Logger& log, EmaForwarder* forwarder)
    : impl_(std::make_shared<Impl>(io, std::move(config), handler, log, forwarder)) {}

Listener::~Listener() {
    if (impl_)
        impl_->stop();
}

void Listener::start() {
    for (const auto& entry : impl_->config.allowed_peers)
        impl_->allowed_peers.push_back(parse_peer_range(entry));
    boost::system::error_code address_ec;
    const auto address = asio::ip::make_address(impl_->config.address, address_ec);
    if (address_ec)
        throw std::invalid_argument("not an address to listen on: \"" + impl_->config.address +
                                    "\"");
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
        impl_->log.info("listening",
                        {{"address", impl_->config.address}, {"port", std::to_string(bound)}});
        impl_->bound_ports.push_back(bound);
        impl_->acceptors.push_back(std::move(acceptor));
    }
    for (std::size_t i = 0; i < impl_->acceptors.size(); ++i)
        asio::co_spawn(impl_->io, impl_->accept_loop(*impl_->acceptors[i], impl_->bound_ports[i]),
                       impl_->report_failure("accept", nullptr));
}

void Listener::stop() {
    impl_->stop();
}

std::vector<std::uint16_t> Listener::bound_ports() const {
    return impl_->bound_ports;
}

std::size_t Listener::open_connections() const {
    return impl_->connections.size();
}
bool Listener::connected_from(const std::string& address) const {
    // One spelling for both sides: on a dual-stack listener an IPv4 ECU shows as ::ffff:a.b.c.d.
    const auto wanted = canonical_unicast_address(address).value_or(address);
    const auto from = [&](const std::string& peer) {
        auto host = peer.substr(0, peer.rfind(':'));
        if (host.starts_with('[') && host.ends_with(']'))
            host = host.substr(1, host.size() - 2);
        return canonical_unicast_address(host).value_or(host) == wanted;
    };
    return std::any_of(impl_->connections.begin(), impl_->connections.end(),
                       [&](const auto& c) { return from(c->peer); });
}
ListenerCounters Listener::counters() const {
    return impl_->counters;
}

} // namespace ecu2mqtt
