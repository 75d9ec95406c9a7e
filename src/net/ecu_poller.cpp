#include "ecu2mqtt/net/ecu_poller.hpp"

#include "ecu2mqtt/core/zoneinfo.hpp"
#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/protocol/polled_zone_watch.hpp"
#include "ecu2mqtt/protocol/printable.hpp"
#include "local_api_exchange.hpp"

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

// An upload exchange in progress: look again this much later.
constexpr std::chrono::seconds kUploadWait{5};
constexpr std::size_t kRawShown = 256;
constexpr std::size_t kTextShown = 80;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Target {
    PollTarget where;
    std::string ecu_id; // the one ECU it polls, once tied: answers as another are refused
    std::string tied_by;
    int generation = 0;       // counts the times it was tied to another ECU
    bool from_upload = false; // `auto`: dropped when its ECU has not uploaded for long
    Steady::time_point last_upload;
    PolledEcuFacts facts;
    PolledZoneWatch zone_watch;
    std::string refusal_logged_for; // the firmware and zone whose refusal was logged last
    std::string zone_unknown_logged;
    bool values_refused_logged = false; // until a real-time reply has none out of range
    std::shared_ptr<const TimeZone> zone;
    Steady::time_point due;
    bool polling = false; // a poll of it is under way
    PollStatus status;
};

} // namespace

struct EcuPoller::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::io_context& io_context, PollerConfig c, Logger& l, FactsSink s, UploadInProgress u)
        : io(io_context), config(std::move(c)), log(l), sink(std::move(s)), uploading(std::move(u)),
          wake(io_context) {}

    asio::io_context& io;
    PollerConfig config;
    Logger& log;
    FactsSink sink;
    UploadInProgress uploading;
    KnownFacts known_facts;
    asio::steady_timer wake;
    // In the order they became known; one is erased only while no poll of it is under way.
    std::map<int, Target> targets;
    int next_key = 0;
    bool stopped = false;

    void add_target(const PollTarget& where, const std::string& ecu_id) {
        Target target;
        target.where = where;
        target.ecu_id = ecu_id;
        target.tied_by = ecu_id.empty() ? "" : "its uploads";
        target.from_upload = config.from_uploads;
        target.last_upload = Steady::now();
        target.due = Steady::now() + config.first_poll;
        target.status.address = where.host;
        target.status.ecu_id = ecu_id;
        seed(target);
        targets.emplace(next_key++, std::move(target));
        wake.cancel(); // the loop looks again at what is due
    }

    // Logs a failed step; whether the port counts as failing is the poll's to say.
    void failed(Target& target, std::string_view command, const std::string& reason,
                std::string_view raw = {}) {
        auto& s = target.status;
        s.last_failure = std::string(command) + ": " + reason;
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
        const auto generation = target.generation;
        const auto answer = co_await exchange_with_ecu(io, target.where, *request,
                                                       config.connect_timeout, config.timeout);
        if (target.generation != generation)
            co_return std::nullopt; // tied to another ECU meanwhile: nothing of it is that one's
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
        const auto generation = target.generation;
        // Tied to another ECU while this poll ran (another ECU uploads from its address now):
        // neither what it answered nor how it went is that ECU's, nor is anything asked further.
        const auto retied = [&] { return stopped || target.generation != generation; };
        std::string step_failed; // the first of 0002 and 0030 that failed, with why
        auto info =
            co_await ask<LocalEcuInfo>(target, LocalCommand::EcuInfo, decode_local_ecu_info);
        if (retied())
            co_return;
        if (info) {
            if (const auto refusal = identity_refusal(target, info->ecu_id)) {
                failed(target, "0001", *refusal);
                info.reset();
            }
        }
        if (info) {
            if (target.ecu_id.empty())
                tie(target, info->ecu_id, "its first answer");
            take_ecu_info(target, *info);
            auto realtime =
                co_await ask<LocalRealtime>(target, LocalCommand::Realtime, decode_local_realtime);
            if (retied())
                co_return;
            if (realtime) {
                note_values_refused(target, realtime->dropped);
                merge_realtime(target.facts, *realtime, unix_now(), config.max_inverters);
            } else
                step_failed = target.status.last_failure;
            auto signals = co_await ask<LocalSignalLevels>(target, LocalCommand::SignalLevels,
                                                           decode_local_signal_levels);
            if (retied())
                co_return;
            if (signals)
                merge_signal_levels(target.facts, *signals, unix_now(), config.max_inverters);
            else if (step_failed.empty())
                step_failed = target.status.last_failure;
            // Inverters no reply listed for a few intervals are gone from the ECU (or were never
            // on it): not kept, so that nothing grows without bound.
            if (realtime || signals)
                drop_unlisted_inverters(target.facts, unix_now() - interval_s() * 3);
        } else {
            break_zone_row(target);
        }
        // Answering ECU info is answering: an ECU that always fails 0002 or 0030 (some models
        // refuse one) is polled at the interval, and shown as answering but failing that.
        auto& s = target.status;
        if (info) {
            if (failures_before > 0)
                log.info("poll_recovered", {{"ecu", target.ecu_id},
                                            {"address", target.where.host},
                                            {"failures", std::to_string(failures_before)}});
            s.consecutive_failures = 0;
            s.failing_since_unix.reset();
            s.last_success_unix = unix_now();
            s.step_failing = step_failed;
        } else {
            ++s.consecutive_failures; // once per poll
            if (!s.failing_since_unix)
                s.failing_since_unix = unix_now();
        }
        if (!target.ecu_id.empty() && (target.facts != before || (info && step_failed.empty())))
            sink(target.ecu_id, target.facts, target.zone);
        // Exponential backoff: a port that stopped answering is asked ever less often.
        const int failures = s.consecutive_failures;
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

    std::int64_t interval_s() const {
        return std::chrono::duration_cast<std::chrono::seconds>(config.interval).count();
    }

    // The ECU info's firmware, zone and count, as far as they are fit to publish; each text
    // refused is logged once (until the ECU says something else).
    void take_ecu_info(Target& target, const LocalEcuInfo& info) {
        std::vector<std::string> refused;
        for (const auto& dropped : info.dropped)
            refused.push_back(dropped.describe());
        for (auto& why : merge_ecu_info(target.facts, info))
            refused.push_back(std::move(why));
        const auto said = info.firmware + '\n' + info.time_zone;
        if (!refused.empty() && said != target.refusal_logged_for) {
            target.refusal_logged_for = said;
            for (const auto& why : refused)
                log.warn("polled_text_refused",
                         {{"ecu", target.ecu_id},
                          {"reason", why},
                          {"firmware", printable_text(info.firmware, false, kTextShown)},
                          {"time_zone", printable_text(info.time_zone, false, kTextShown)},
                          {"action", "left out: the last good text stays, a count is unknown"}});
        }
        if (!info.time_zone.empty() && target.facts.time_zone == info.time_zone) {
            watch_zone(target, info.time_zone);
        } else {
            break_zone_row(target);
        }
        update_zone(target);
    }

    // A poll without a zone (no answer, or a zone refused): a change is no longer said "in a row".
    static void break_zone_row(Target& target) {
        target.zone_watch.candidate.clear();
        target.zone_watch.candidate_polls = 0;
    }

    void watch_zone(Target& target, const std::string& said) {
        const auto kept = target.zone_watch.accepted;
        const auto step = watch_polled_zone(target.zone_watch, said);
        target.facts.time_zone = target.zone_watch.accepted;
        if (step.suspect)
            log.warn("time_zone_changed",
                     {{"ecu", target.ecu_id},
                      {"from", kept.value_or("")},
                      {"to", said},
                      {"action", "the old zone stays until the ECU says the new one on " +
                                     std::to_string(kZoneChangeSteadyPolls) + " polls in a row"}});
        if (step.accepted)
            log.info("time_zone_change_taken",
                     {{"ecu", target.ecu_id}, {"from", kept.value_or("")}, {"to", said}});
    }

    // Why an ECU-info answer cannot be the target's ECU, if it cannot: a target polls one ECU
    // (the one uploading from its address, or the first that answered there), and no two
    // targets feed the same ECU. Anyone on the LAN who answers at a polled address could else
    // set another ECU's firmware, time zone and so its day.
    std::optional<std::string> identity_refusal(const Target& target,
                                                const std::string& answered_as) const {
        if (!target.ecu_id.empty() && target.ecu_id != answered_as)
            return "answered as ECU " + answered_as + ", but this address polls ECU " +
                   target.ecu_id + " (tied by " + target.tied_by + ")";
        for (const auto& [key, other] : targets)
            if (&other != &target && other.ecu_id == answered_as)
                return "answered as ECU " + answered_as + ", which is polled at " +
                       other.where.host + ":" + std::to_string(other.where.port);
        return std::nullopt;
    }

    void tie(Target& target, const std::string& ecu_id, const std::string& by) {
        target.ecu_id = ecu_id;
        target.tied_by = by;
        target.status.ecu_id = ecu_id;
        seed(target);
        log.info("poll_ecu_tied",
                 {{"ecu", ecu_id},
                  {"address", target.where.host + ":" + std::to_string(target.where.port)},
                  {"by", by}});
    }

    // The target polls `ecu_id` (uploading from its address) from now on, with nothing that
    // the ECU it polled before said.
    void retie(Target& target, const std::string& ecu_id) {
        const bool was_tied = !target.ecu_id.empty();
        tie(target, ecu_id, "its uploads");
        target.last_upload = Steady::now();
        if (!was_tied)
            return;
        ++target.generation;
        target.facts = {};
        target.zone.reset();
        target.zone_watch = {};
        target.refusal_logged_for.clear();
        target.zone_unknown_logged.clear();
        target.status = PollStatus{};
        target.status.ecu_id = ecu_id;
        target.status.address = target.where.host;
        seed(target);
    }

    // A target newly tied to an ECU starts from what the service already knows of it (kept
    // across a restart, or from before its target was dropped at night), so that a first poll
    // answering ECU info only takes nothing away, and a changed zone is held back as always.
    void seed(Target& target) {
        if (target.ecu_id.empty() || !known_facts || target.facts != PolledEcuFacts{})
            return;
        if (auto known = known_facts(target.ecu_id)) {
            target.facts = std::move(*known);
            target.zone_watch.accepted = target.facts.time_zone;
            update_zone(target);
        }
    }

    // Values of a real-time reply out of range (left unset): logged when they start.
    void note_values_refused(Target& target, const std::vector<LocalApiError>& dropped) {
        if (dropped.empty() || target.values_refused_logged) {
            target.values_refused_logged = !dropped.empty();
            return;
        }
        target.values_refused_logged = true;
        log.warn("polled_value_refused", {{"ecu", target.ecu_id},
                                          {"values", std::to_string(dropped.size())},
                                          {"first", dropped.front().describe()},
                                          {"action", "left unknown"}});
    }

    bool ecu_has_target(const std::string& ecu_id) const {
        return std::any_of(targets.begin(), targets.end(),
                           [&ecu_id](const auto& entry) { return entry.second.ecu_id == ecu_id; });
    }

    void update_zone(Target& target) {
        const auto& name = target.facts.time_zone;
        if (!name || (target.zone && target.zone->name() == *name))
            return;
        target.zone = load_time_zone(*name, config.zoneinfo_dir);
        if (!target.zone && target.zone_unknown_logged != *name) {
            target.zone_unknown_logged = *name;
            log.warn("time_zone_unknown",
                     {{"ecu", target.ecu_id},
                      {"time_zone", printable_text(*name, false, kTextShown)},
                      {"action", "not in the host's zone files: the learned clock offset keeps "
                                 "giving the ECU day (is tzdata installed?)"}});
        }
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

    // With `auto`, an ECU not heard of for a while is not polled on: it comes back with its
    // next upload. Otherwise every address that ever uploaded would be polled for good.
    void drop_silent_auto_targets() {
        const auto silent_for =
            std::max<Steady::duration>(3 * config.interval, config.auto_target_silence);
        const auto now = Steady::now();
        std::erase_if(targets, [&](const auto& entry) {
            const auto& target = entry.second;
            const bool drop =
                target.from_upload && !target.polling && now - target.last_upload > silent_for;
            if (drop)
                log.info(
                    "poll_ecu_dropped",
                    {{"ecu", target.ecu_id},
                     {"address", target.where.host},
                     {"reason", "no upload for " +
                                    std::to_string(
                                        std::chrono::duration_cast<std::chrono::seconds>(silent_for)
                                            .count()) +
                                    " s"}});
            return drop;
        });
    }

    std::size_t in_flight() const {
        return static_cast<std::size_t>(
            std::count_if(targets.begin(), targets.end(),
                          [](const auto& entry) { return entry.second.polling; }));
    }

    asio::awaitable<void> run() {
        while (!stopped) {
            drop_silent_auto_targets();
            Target* next = nullptr;
            int next_at = 0;
            if (in_flight() < std::max<std::size_t>(config.max_in_flight, 1))
                for (auto& [key, target] : targets)
                    if (!target.polling && !ecu_busy(target) && (!next || target.due < next->due)) {
                        next = &target;
                        next_at = key;
                    }
            // At the latest when the next auto target may have gone silent.
            wake.expires_after(std::min<Steady::duration>(
                std::chrono::hours(1),
                std::max<Steady::duration>(config.interval, std::chrono::milliseconds(100))));
            if (next)
                wake.expires_at(std::min(next->due, wake.expiry()));
            boost::system::error_code ec;
            co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            // Meanwhile the target may have gone (its ECU forgotten, or re-tied): look again.
            const auto still = targets.find(next_at);
            next =
                next && still != targets.end() && !still->second.polling ? &still->second : nullptr;
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

void EcuPoller::set_known_facts(KnownFacts known) {
    impl_->known_facts = std::move(known);
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
    // "address:port", or "[IPv6]:port"
    std::string peer_address = peer.substr(0, peer.rfind(':'));
    if (peer_address.starts_with('[') && peer_address.ends_with(']'))
        peer_address = peer_address.substr(1, peer_address.size() - 2);
    const auto canonical = canonical_unicast_address(peer_address);
    if (!canonical)
        return;
    peer_address = *canonical; // an IPv4 ECU on a dual-stack listener shows as ::ffff:a.b.c.d
    auto& targets = impl_->targets;
    const auto at_address = std::find_if(targets.begin(), targets.end(), [&](const auto& entry) {
        return entry.second.where.host == peer_address;
    });
    if (!impl_->config.from_uploads) {
        // A configured address polls the ECU that uploads from it: its uploads outrank an
        // answer (the first to answer there may have been another), and a new ECU uploading
        // from it (one replaced) takes it over.
        if (at_address != targets.end() && at_address->second.ecu_id != ecu_id &&
            !impl_->ecu_has_target(ecu_id))
            impl_->retie(at_address->second, ecu_id);
        return;
    }
    for (auto& [key, target] : targets)
        if (target.ecu_id == ecu_id) {
            if (target.where.host != peer_address) {
                // The ECU moved (a new DHCP lease): polled at its new address from now on,
                // afresh, since the old address's failures say nothing of the new one.
                impl_->log.info(
                    "poll_ecu_moved",
                    {{"ecu", ecu_id}, {"from", target.where.host}, {"to", peer_address}});
                target.where.host = peer_address;
                target.status.address = peer_address;
                target.status.consecutive_failures = 0;
                target.status.failing_since_unix.reset();
                target.status.last_failure.clear();
                target.due = std::min(target.due, Steady::now() + impl_->config.first_poll);
                impl_->wake.cancel();
            }
            target.last_upload = Steady::now();
            return;
        }
    if (at_address != targets.end()) {
        // Another ECU uploads from this address now (an ECU replaced, a lease given to another):
        // the address polls that one, and nothing the old one said is kept for it.
        impl_->retie(at_address->second, ecu_id);
        return;
    }
    impl_->add_target({peer_address, kLocalApiPort}, ecu_id);
    impl_->log.info("poll_ecu_found", {{"ecu", ecu_id}, {"address", peer_address}});
}

void EcuPoller::forget(const std::string& ecu_id) {
    if (!impl_->config.from_uploads)
        return; // a configured address stays polled
    std::erase_if(impl_->targets, [&](const auto& entry) {
        return entry.second.ecu_id == ecu_id && !entry.second.polling;
    });
    // One being polled goes once its poll is over and its ECU stays silent.
    for (auto& [key, target] : impl_->targets)
        if (target.ecu_id == ecu_id)
            target.last_upload = Steady::time_point{};
}

std::vector<PollStatus> EcuPoller::status() const {
    std::vector<PollStatus> all;
    for (const auto& [key, target] : impl_->targets)
        all.push_back(target.status);
    return all;
}

} // namespace ecu2mqtt
