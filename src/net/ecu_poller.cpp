#include "ecu2mqtt/net/ecu_poller.hpp"

#include "ecu2mqtt/core/zoneinfo.hpp"
#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/protocol/printable.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace ecu2mqtt {

// GCC 12 takes the frame deallocation of a coroutine that awaits other coroutines for a
// mismatched new/delete pair (a false positive, gone in GCC 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace asio = boost::asio;
using asio::ip::tcp;
using Steady = std::chrono::steady_clock;

namespace {

// The biggest plant's real-time reply is a few KB; more is no reply of an ECU.
constexpr std::size_t kMaxReplyBytes = 64 * 1024;
// An upload exchange in progress: look again this much later.
constexpr std::chrono::seconds kUploadWait{5};
constexpr std::size_t kRawShown = 256;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Exchange {
    std::optional<std::string> reply;
    std::string failure;
};

struct Target {
    PollTarget where;
    std::string ecu_id;
    PolledEcuFacts facts;
    std::shared_ptr<const TimeZone> zone;
    Steady::time_point due;
    bool polling = false; // a poll of it is under way
    PollStatus status;
};

} // namespace

PollerConfig parse_poll_ecus(const std::string& text) {
    PollerConfig config;
    if (text.empty() || text == "off")
        return config;
    if (text == "auto") {
        config.from_uploads = true;
        return config;
    }
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = std::min(text.find(',', start), text.size());
        auto item = text.substr(start, comma - start);
        // Items are trimmed, as in every other list option ("a, b").
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        const auto parsed = parse_host_port(item); // throws std::invalid_argument
        if (!is_ip_literal(parsed.host))
            throw std::invalid_argument("'" + item + "' is not an IP address: give the ECU's " +
                                        "LAN address, or auto");
        const auto address = canonical_unicast_address(parsed.host);
        if (!address)
            throw std::invalid_argument("'" + item + "' is no address of one ECU (unspecified, " +
                                        "multicast or with a scope)");
        const PollTarget target{*address, parsed.port.value_or(kLocalApiPort)};
        for (const auto& known : config.targets)
            if (known.host == target.host && known.port == target.port)
                throw std::invalid_argument("'" + item + "' is given twice");
        config.targets.push_back(target);
        start = comma + 1;
    }
    return config;
}

struct EcuPoller::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::io_context& io_context, PollerConfig c, Logger& l, FactsSink s, UploadInProgress u)
        : io(io_context), config(std::move(c)), log(l), sink(std::move(s)), uploading(std::move(u)),
          wake(io_context) {}

    asio::io_context& io;
    PollerConfig config;
    Logger& log;
    FactsSink sink;
    UploadInProgress uploading;
    asio::steady_timer wake;
    std::map<int, Target> targets; // in the order they became known; never erased while running
    int next_key = 0;
    bool stopped = false;

    void add_target(const PollTarget& where, const std::string& ecu_id) {
        Target target;
        target.where = where;
        target.ecu_id = ecu_id;
        target.due = Steady::now() + config.first_poll;
        target.status.address = where.host;
        target.status.ecu_id = ecu_id;
        targets.emplace(next_key++, std::move(target));
        wake.cancel(); // the loop looks again at what is due
    }

    asio::awaitable<Exchange> exchange(const PollTarget& where, const std::string& request) {
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(where.host, ec);
        if (ec)
            co_return Exchange{std::nullopt, "bad address"};
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
        arm(std::min(config.connect_timeout, config.timeout));
        co_await socket->async_connect(tcp::endpoint(address, where.port),
                                       asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return Exchange{std::nullopt, timed_out() ? "timed out connecting"
                                                         : "cannot connect: " + ec.message()};
        arm(config.timeout);
        co_await asio::async_write(*socket, asio::buffer(request),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec)
            co_return Exchange{std::nullopt, "closed while sending: " + ec.message()};
        arm(config.timeout); // the whole reply within one timeout
        std::string reply;
        std::array<char, 2048> buffer{};
        while (!local_reply_complete(reply)) {
            const auto n = co_await socket->async_read_some(
                asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
            reply.append(buffer.data(), n);
            if (reply.size() > kMaxReplyBytes) {
                timer.cancel();
                co_return Exchange{std::nullopt, "reply longer than " +
                                                     std::to_string(kMaxReplyBytes) + " bytes"};
            }
            if (ec) {
                if (timed_out())
                    co_return Exchange{std::nullopt, "timed out waiting for the reply (" +
                                                         std::to_string(reply.size()) +
                                                         " bytes came)"};
                if (reply.empty())
                    co_return Exchange{std::nullopt, "closed without a reply"};
                break; // closed after answering: decoded as far as it goes
            }
        }
        timer.cancel();
        boost::system::error_code ignored;
        socket->close(ignored);
        co_return Exchange{std::move(reply), {}};
    }

    void failed(Target& target, std::string_view command, const std::string& reason,
                std::string_view raw = {}) {
        auto& s = target.status;
        s.last_failure = std::string(command) + ": " + reason;
        if (!s.failing_since_unix)
            s.failing_since_unix = unix_now();
        std::vector<LogField> fields{
            {"ecu", target.ecu_id.empty() ? "unknown" : target.ecu_id},
            {"address", target.where.host + ":" + std::to_string(target.where.port)},
            {"command", std::string(command)},
            {"reason", reason},
            {"failures", std::to_string(s.consecutive_failures + 1)}};
        if (!raw.empty())
            fields.push_back({"raw", printable_text(raw, false, kRawShown)});
        log.log(LogLevel::Warn, "poll_failed", std::span<const LogField>(fields));
    }

    // One request and its decoded reply, or nullopt after logging why not.
    template <class Reply, class Decode>
    asio::awaitable<std::optional<Reply>> ask(Target& target, LocalCommand command, Decode decode) {
        const auto code = local_command_code(command);
        const auto request = encode_local_request(command, target.ecu_id);
        if (!request) {
            failed(target, code, "no ECU id to ask with");
            co_return std::nullopt;
        }
        const auto answer = co_await exchange(target.where, *request);
        if (!answer.reply) {
            failed(target, code, answer.failure);
            co_return std::nullopt;
        }
        const auto result = decode(*answer.reply);
        if (const auto* error = std::get_if<LocalApiError>(&result)) {
            failed(target, code, error->describe(), *answer.reply);
            co_return std::nullopt;
        }
        co_return std::get<Reply>(result);
    }

    asio::awaitable<void> poll(Target& target) {
        const auto before = target.facts;
        const auto failures_before = target.status.consecutive_failures;
        bool all_answered = false;
        if (auto info =
                co_await ask<LocalEcuInfo>(target, LocalCommand::EcuInfo, decode_local_ecu_info)) {
            if (!target.ecu_id.empty() && target.ecu_id != info->ecu_id)
                log.warn("poll_ecu_id_differs", {{"ecu", target.ecu_id},
                                                 {"address", target.where.host},
                                                 {"answered_as", info->ecu_id}});
            target.ecu_id = info->ecu_id;
            target.status.ecu_id = info->ecu_id;
            merge_ecu_info(target.facts, *info);
            update_zone(target);
            auto realtime =
                co_await ask<LocalRealtime>(target, LocalCommand::Realtime, decode_local_realtime);
            if (realtime)
                merge_realtime(target.facts, *realtime, unix_now());
            auto signals = co_await ask<LocalSignalLevels>(target, LocalCommand::SignalLevels,
                                                           decode_local_signal_levels);
            if (signals)
                merge_signal_levels(target.facts, *signals, unix_now());
            all_answered = realtime && signals;
        }
        if (all_answered) {
            if (failures_before > 0)
                log.info("poll_recovered",
                         {{"ecu", target.ecu_id},
                          {"address", target.where.host},
                          {"failures", std::to_string(target.status.consecutive_failures)}});
            target.status.consecutive_failures = 0;
            target.status.failing_since_unix.reset();
            target.status.last_success_unix = unix_now();
        } else {
            ++target.status.consecutive_failures; // once per poll, however many steps failed
        }
        if (stopped)
            co_return;
        if (!target.ecu_id.empty() && (target.facts != before || all_answered))
            sink(target.ecu_id, target.facts, target.zone);
        // Exponential backoff: a port that stopped answering is asked ever less often.
        const int failures = target.status.consecutive_failures;
        auto wait = config.interval;
        for (int i = 1; i < failures && wait < config.max_backoff; ++i)
            wait *= 2;
        if (failures > 1)
            wait = std::min(wait, std::max(config.max_backoff, config.interval));
        target.due = Steady::now() + wait;
        if (failures > 0)
            log.info("poll_backoff", {{"ecu", target.ecu_id.empty() ? "unknown" : target.ecu_id},
                                      {"address", target.where.host},
                                      {"next_in_ms", std::to_string(wait.count())}});
    }

    void update_zone(Target& target) {
        const auto& name = target.facts.time_zone;
        if (!name || (target.zone && target.zone->name() == *name))
            return;
        target.zone = load_time_zone(*name, config.zoneinfo_dir);
        if (!target.zone)
            log.warn("time_zone_unknown",
                     {{"ecu", target.ecu_id},
                      {"time_zone", printable_text(*name, false, 64)},
                      {"action", "the learned clock offset keeps giving the ECU day (is tzdata "
                                 "installed?)"}});
    }

    // Whether another target that answered as the same ECU is being polled (one ECU seen at
    // two addresses, wired and WLAN): an ECU is asked one thing at a time.
    bool ecu_busy(const Target& candidate) const {
        if (candidate.ecu_id.empty())
            return false;
        return std::any_of(targets.begin(), targets.end(), [&candidate](const auto& entry) {
            return entry.second.polling && &entry.second != &candidate &&
                   entry.second.ecu_id == candidate.ecu_id;
        });
    }

    // Each target is polled on its own, so that one that hangs (accepts and says nothing, or
    // drops the connection attempt) delays no other; a target is never polled twice at once.
    void spawn_poll(Target& target) {
        target.polling = true;
        asio::co_spawn(
            io, [self = shared_from_this(), &target] { return self->poll(target); },
            [self = shared_from_this(), &target](std::exception_ptr failure) {
                target.polling = false;
                self->wake.cancel(); // the loop looks again at what is due
                if (!failure)
                    return;
                try {
                    std::rethrow_exception(failure);
                } catch (const std::exception& e) {
                    self->log.error("poll_aborted",
                                    {{"ecu", target.ecu_id.empty() ? "unknown" : target.ecu_id},
                                     {"address", target.where.host},
                                     {"error", e.what()}});
                }
            });
    }

    asio::awaitable<void> run() {
        while (!stopped) {
            Target* next = nullptr;
            for (auto& [key, target] : targets)
                if (!target.polling && !ecu_busy(target) && (!next || target.due < next->due))
                    next = &target;
            wake.expires_after(std::chrono::hours(1));
            if (next)
                wake.expires_at(next->due);
            boost::system::error_code ec;
            co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (stopped || !next || Steady::now() < next->due)
                continue; // woken early: a new target, or stopping
            if (uploading && uploading(next->where.host)) {
                next->due =
                    Steady::now() + std::min<Steady::duration>(kUploadWait, config.interval);
                continue;
            }
            spawn_poll(*next);
        }
    }
};

EcuPoller::EcuPoller(asio::io_context& io, PollerConfig config, Logger& log, FactsSink sink,
                     UploadInProgress uploading)
    : impl_(std::make_shared<Impl>(io, std::move(config), log, std::move(sink),
                                   std::move(uploading))) {}

EcuPoller::~EcuPoller() {
    stop();
}

void EcuPoller::start() {
    for (const auto& where : impl_->config.targets)
        impl_->add_target(where, "");
    asio::co_spawn(
        impl_->io, [self = impl_]() { return self->run(); },
        [self = impl_](std::exception_ptr failure) {
            if (!failure)
                return;
            try {
                std::rethrow_exception(failure);
            } catch (const std::exception& e) {
                self->log.error("poller_failed", {{"error", e.what()}});
            }
        });
}

void EcuPoller::stop() {
    impl_->stopped = true;
    impl_->wake.cancel();
}

void EcuPoller::on_upload(const std::string& ecu_id, const std::string& peer) {
    if (!impl_->config.from_uploads)
        return;
    // "address:port", or "[IPv6]:port"
    std::string peer_address = peer.substr(0, peer.rfind(':'));
    if (peer_address.starts_with('[') && peer_address.ends_with(']'))
        peer_address = peer_address.substr(1, peer_address.size() - 2);
    const auto canonical = canonical_unicast_address(peer_address);
    if (!canonical)
        return;
    peer_address = *canonical; // an IPv4 ECU on a dual-stack listener shows as ::ffff:a.b.c.d
    for (auto& [key, target] : impl_->targets) {
        if (target.ecu_id == ecu_id) {
            // The ECU moved (a new DHCP lease): polled at its new address from now on.
            target.where.host = peer_address;
            target.status.address = peer_address;
            return;
        }
        if (target.where.host == peer_address)
            return;
    }
    impl_->add_target({peer_address, kLocalApiPort}, ecu_id);
    impl_->log.info("poll_ecu_found", {{"ecu", ecu_id}, {"address", peer_address}});
}

std::vector<PollStatus> EcuPoller::status() const {
    std::vector<PollStatus> all;
    for (const auto& [key, target] : impl_->targets)
        all.push_back(target.status);
    return all;
}

} // namespace ecu2mqtt
