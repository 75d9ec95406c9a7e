#include "ecu2mqtt/net/pvoutput_client.hpp"

#include "ecu2mqtt/net/asio.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace ecu2mqtt {
namespace asio = boost::asio;

namespace {

// A day sent with addoutput goes again when its figures change, at most this often: a backfill
// arriving over several minutes costs few requests.
constexpr std::int64_t kOutputResendAfter_s = 15 * 60;

// PVOutput's limit is per hour: a reset time in the past, or further away than an hour (a wrong
// clock on either side), would make the uploader hammer it or park for days.
std::int64_t rate_limit_end(std::optional<std::int64_t> reset_unix, std::int64_t now_s) {
    return std::clamp(reset_unix.value_or(now_s + 3600), now_s + 60, now_s + 3600);
}

} // namespace

PvoutputClient::PvoutputClient(asio::any_io_executor executor, PvoutputClientConfig config,
                               Store& store, const Clock& clock, Logger& log)
    : executor_(executor), config_(std::move(config)), endpoint_(parse_pvoutput_url(config_.url)),
      limits_(pvoutput_limits(config_.donor)), store_(store), clock_(clock), log_(log),
      queue_(std::make_unique<PvoutputQueue>(store.file())), timer_(executor) {
    snapshot_.enabled = true;
    snapshot_.state = "current";
}

PvoutputClient::~PvoutputClient() {
    stop();
}

void PvoutputClient::start() {
    running_ = true;
    log_.info("pvoutput_started", {{"url", config_.url},
                                   {"interval_min", std::to_string(config_.mapping.interval_min)},
                                   {"donor", config_.donor ? "yes" : "no"},
                                   {"batch", std::to_string(limits_.batch)}});
    schedule(std::chrono::milliseconds(0));
}

void PvoutputClient::stop() {
    running_ = false;
    timer_.cancel();
    if (in_flight_)
        std::exchange(in_flight_, nullptr)->cancel();
}

std::int64_t PvoutputClient::now_s() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch())
        .count();
}

// PVOutput counts a status's age in days of its local date; a day of slack for the zone.
std::string PvoutputClient::oldest_allowed_slot() const {
    const auto oldest =
        from_epoch_seconds(now_s() - std::int64_t(limits_.max_age_days - 1) * 86400);
    return format_iso(date_of(oldest)) + "T00:00";
}

void PvoutputClient::schedule(std::chrono::milliseconds after) {
    if (!running_)
        return;
    timer_.expires_after(after);
    timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code e) {
        if (!e && !alive.expired())
            tick();
    });
}

void PvoutputClient::tick() {
    if (!running_ || busy_ || snapshot_.stopped)
        return;
    if (now_s() < not_before_s_)
        return schedule(config_.poll);
    snapshot_.waiting_until_unix = 0;
    try {
        if (expire_old())
            return;
        watch_silent_ecus();
        const auto now = now_s();
        const auto systems = systems_to_send();
        for (std::size_t i = 0; i < systems.size(); ++i) {
            const auto& system = systems[(next_system_ + i) % systems.size()];
            auto& state = systems_[system];
            if (now < state.not_before_s)
                continue;
            std::vector<PvoutputStatus> pending;
            if (state.suspect) {
                // The newest sendable status, alone, tells whether the suspect's reason was its
                // own; until there is one, the suspect waits (nothing is lost). The newest, not
                // the next: a retry an hour later probes a fresh one, so that two bad statuses
                // cannot hold the system for good.
                if (auto newest = queue_->newest_pending(system);
                    newest && newest->slot != state.suspect->slot)
                    pending.push_back(std::move(*newest));
            } else {
                pending = queue_->pending(system, state.alone ? 1 : limits_.batch, true);
            }
            if (pending.empty())
                continue;
            next_system_ = (next_system_ + i + 1) % systems.size();
            if (pending.size() == 1) {
                const auto body = addstatus_body(
                    {pending[0].slot, pending[0].lifetime_wh, pending[0].power_w, {}, {}});
                return send(Kind::Status, system, body, std::move(pending), std::nullopt);
            }
            std::vector<PvoutputStatusValues> values;
            for (const auto& status : pending)
                values.push_back({status.slot, status.lifetime_wh, status.power_w, {}, {}});
            return send(Kind::Batch, system, addbatchstatus_body(values), std::move(pending),
                        std::nullopt);
        }
        const auto oldest_day = oldest_allowed_slot().substr(0, 10);
        for (const auto& system : systems)
            if (auto day = queue_->day_to_close(system, oldest_day, now - kOutputResendAfter_s)) {
                auto body =
                    addoutput_body(day->day, day->generated_wh, day->peak_power_w, day->peak_time);
                return send(Kind::Output, system, std::move(body), {}, std::move(day));
            }
    } catch (const DatabaseError& e) {
        snapshot_.last_error = std::string("reading the queue: ") + e.what();
        log_.error("pvoutput_queue_unreadable", {{"error", e.what()}});
    }
    snapshot_.state = std::any_of(systems_.begin(), systems_.end(),
                                  [](const auto& entry) { return !entry.second.held.empty(); })
                          ? "held"
                          : "current";
    schedule(config_.poll);
}

void PvoutputClient::watch_silent_ecus() {
    if (now_s() < next_silent_check_s_)
        return;
    next_silent_check_s_ = now_s() + 60;
    auto silent = queue_->silent_ecus(config_.mapping);
    std::set<std::pair<std::string, std::string>> still;
    for (const auto& ecu : silent) {
        still.emplace(ecu.ecu_id, ecu.system_id);
        if (silent_warned_.emplace(ecu.ecu_id, ecu.system_id).second)
            log_.warn("pvoutput_ecu_silent",
                      {{"ecu", ecu.ecu_id},
                       {"system", ecu.system_id},
                       {"last_report", ecu.last_slot.empty() ? "never" : ecu.last_slot},
                       {"action", "system " + ecu.system_id +
                                      "'s statuses go with the other "
                                      "ECUs' sum, its energy kept where it stopped; check the ECU, "
                                      "or its id in --pvoutput-systems"}});
    }
    std::erase_if(silent_warned_, [&](const auto& warned) {
        if (still.contains(warned))
            return false;
        log_.info("pvoutput_ecu_reporting", {{"ecu", warned.first}, {"system", warned.second}});
        return true;
    });
    snapshot_.silent_ecus = std::move(silent);
}

bool PvoutputClient::expire_old() {
    const auto cutoff = oldest_allowed_slot();
    const auto old = queue_->pending_before(cutoff);
    if (old == 0)
        return false;
    if (const auto day = now_s() / 86400; day != expiry_warned_day_) {
        expiry_warned_day_ = day;
        // Statuses too old the moment they are made: not a backlog, but an ECU whose clock is
        // behind (the slots are its local time).
        const auto newest = queue_->newest_filled_slot();
        const bool clock_behind = !newest.empty() && newest < cutoff;
        log_.warn("pvoutput_statuses_expired",
                  {{"statuses", std::to_string(old)},
                   {"older_than", cutoff},
                   {"max_age_days", std::to_string(limits_.max_age_days)},
                   {"newest_status", newest},
                   {"action", clock_behind
                                  ? "kept as expired (see history --pvoutput); even the newest "
                                    "status is dated by the ECU's clock older than PVOutput "
                                    "takes: set the ECU's date and time (its web page or the "
                                    "ECU app)"
                                  : "kept as expired (see history --pvoutput); PVOutput takes no "
                                    "status that old"}});
    }
    WriteBatch batch;
    PvoutputQueue::mark_expired(batch, cutoff, now_s());
    mark_then_continue(std::move(batch));
    return true;
}

void PvoutputClient::send(Kind kind, std::string system_id, std::string body,
                          std::vector<PvoutputStatus> statuses,
                          std::optional<PvoutputDayOutput> output) {
    busy_ = true;
    snapshot_.state = kind == Kind::Batch ? "sending backlog" : "current";
    const std::string_view path = kind == Kind::Status  ? kPvoutputAddStatus
                                  : kind == Kind::Batch ? kPvoutputAddBatchStatus
                                                        : kPvoutputAddOutput;
    ++snapshot_.requests;
    in_flight_ = start_pvoutput_exchange(
        executor_, endpoint_,
        {std::string(path), system_id, config_.api_key, config_.user_agent, std::move(body)},
        config_.request_timeout,
        [this, alive = std::weak_ptr<int>(alive_), kind, system_id, statuses = std::move(statuses),
         output = std::move(output)](PvoutputAnswer answer) mutable {
            if (alive.expired())
                return;
            in_flight_ = nullptr;
            if (!running_) {
                busy_ = false;
                return;
            }
            answered(kind, system_id, std::move(statuses), std::move(output), std::move(answer));
        });
}

void PvoutputClient::answered(Kind kind, const std::string& system_id,
                              std::vector<PvoutputStatus> statuses,
                              std::optional<PvoutputDayOutput> output, PvoutputAnswer answer) {
    if (answer.rate.remaining)
        snapshot_.requests_left = answer.rate.remaining;
    if (answer.rate.limit)
        snapshot_.request_limit = answer.rate.limit;
    if (!answer.network_error.empty())
        return back_off(answer.network_error);
    const auto reply = classify_reply(answer.status, answer.body);
    const auto now = now_s();
    WriteBatch marks;
    switch (reply.kind) {
    case PvoutputReplyKind::Ok: {
        if (kind == Kind::Output) {
            output->sent_at_s = now;
            PvoutputQueue::mark_output_sent(marks, *output);
            log_.info("pvoutput_day_sent",
                      {{"system", output->system_id},
                       {"day", output->day},
                       {"generated_wh", std::to_string(std::llround(output->generated_wh))}});
            break;
        }
        std::vector<bool> added(statuses.size(), kind == Kind::Status);
        if (kind == Kind::Batch) {
            const auto results = parse_batch_reply(answer.body);
            if (!results)
                return back_off("unreadable addbatchstatus reply: " + reply.reason);
            std::set<std::string> taken, listed;
            for (const auto& result : *results) {
                listed.insert(result.slot);
                if (result.added)
                    taken.insert(result.slot);
            }
            // A status the reply does not name was neither taken nor refused: it stays pending.
            const auto unnamed = std::erase_if(
                statuses, [&](const PvoutputStatus& s) { return !listed.contains(s.slot); });
            if (unnamed)
                log_.warn("pvoutput_reply_incomplete",
                          {{"statuses_not_named", std::to_string(unnamed)},
                           {"action", "kept pending, to go again"}});
            added.assign(statuses.size(), false);
            std::size_t refused = 0;
            for (std::size_t i = 0; i < statuses.size(); ++i) {
                added[i] = taken.contains(statuses[i].slot);
                if (!added[i]) {
                    ++refused;
                    log_.warn("pvoutput_status_not_added",
                              {{"system", statuses[i].system_id},
                               {"slot", statuses[i].slot},
                               {"action", "kept as rejected (see history --pvoutput)"}});
                }
            }
            if (refused)
                snapshot_.last_error = std::to_string(refused) + " status(es) not added";
        }
        auto& state = systems_[system_id];
        state.held.clear();
        if (kind == Kind::Batch) {
            state.alone = 0;
        } else if (state.suspect && state.suspect->slot != statuses.front().slot) {
            // A later status is taken alone: the suspect's refusal was its own. The rest go in
            // batches again.
            PvoutputQueue::mark_sent(marks, {*state.suspect}, {false}, now, state.suspect_reason);
            if (first_time(state, "pvoutput_status_refused", state.suspect_reason))
                log_.warn("pvoutput_status_refused",
                          {{"system", system_id},
                           {"slot", state.suspect->slot},
                           {"reason", state.suspect_reason},
                           {"action", "kept as rejected; the system's other statuses go on"}});
            state.suspect.reset();
            state.alone = 0;
        } else if (state.alone) {
            --state.alone;
            state.not_before_s = state.alone ? now + pace_s() : 0;
        }
        // Taken: a refusal from now on is a new one, worth a warning again.
        state.logged.clear();
        snapshot_.last_upload_unix = now;
        PvoutputQueue::mark_sent(marks, std::move(statuses), std::move(added), now,
                                 "not added by PVOutput");
        break;
    }
    case PvoutputReplyKind::BadRequest: {
        if (kind == Kind::Output) {
            snapshot_.last_error = reply.reason;
            log_.warn(
                "pvoutput_day_refused",
                {{"system", output->system_id}, {"day", output->day}, {"reason", reply.reason}});
            output->sent_at_s = now;
            PvoutputQueue::mark_output_sent(marks, *output);
            break;
        }
        auto& state = systems_[system_id];
        snapshot_.last_error = "system " + system_id + ": " + reply.reason;
        if (kind == Kind::Batch && statuses.size() > 1) {
            // Refused as a whole: the reason may be one status's or the system's. None is marked;
            // they go one at a time, paced within the rate limit, until that is known.
            state.alone = statuses.size();
            state.not_before_s = now + pace_s();
            if (first_time(state, "pvoutput_batch_refused", reply.reason))
                log_.info("pvoutput_batch_refused",
                          {{"system", system_id},
                           {"statuses", std::to_string(statuses.size())},
                           {"reason", reply.reason},
                           {"action", "sending them one at a time, one every " +
                                          std::to_string(pace_s()) + " s"}});
            busy_ = false;
            return schedule(config_.poll);
        }
        refused_alone(state, system_id, std::move(statuses.front()), reply.reason, marks);
        break;
    }
    case PvoutputReplyKind::RateLimited:
        not_before_s_ = rate_limit_end(answer.rate.reset_unix, now);
        snapshot_.waiting_until_unix = not_before_s_;
        snapshot_.requests_left = 0;
        snapshot_.state = "rate-limited";
        snapshot_.last_error = reply.reason;
        log_.warn("pvoutput_rate_limited",
                  {{"reason", reply.reason},
                   {"resumes_in_s", std::to_string(not_before_s_ - now)},
                   {"action", config_.donor ? "fewer systems per key"
                                            : "wait, or --pvoutput-donor in donation mode"}});
        busy_ = false;
        return schedule(config_.poll);
    case PvoutputReplyKind::AuthFailed:
        busy_ = false;
        refuse_system(system_id, answer.status, reply.reason);
        return schedule(std::chrono::milliseconds(0));
    case PvoutputReplyKind::Retry:
        return back_off(reply.reason);
    }
    backoff_ = std::chrono::seconds(0);
    if (answer.rate.remaining && *answer.rate.remaining <= 0 && answer.rate.reset_unix) {
        not_before_s_ = rate_limit_end(answer.rate.reset_unix, now);
        snapshot_.waiting_until_unix = not_before_s_;
        snapshot_.state = "rate-limited";
    }
    mark_then_continue(std::move(marks));
}

void PvoutputClient::mark_then_continue(WriteBatch batch) {
    busy_ = true;
    store_.submit(std::move(batch),
                  [this, alive = std::weak_ptr<int>(alive_)](const std::string& error) {
                      if (alive.expired())
                          return;
                      busy_ = false;
                      if (!error.empty()) {
                          // Not marked: those statuses go again, which PVOutput takes as the same.
                          snapshot_.last_error = "store: " + error;
                          return schedule(config_.poll);
                      }
                      schedule(std::chrono::milliseconds(0));
                  });
}

// A status PVOutput refused on its own (addstatus 400). The first is a suspect, kept pending; a
// second refused for the same reason makes it the system's (a system size set too small on
// PVOutput, say): none is marked, the system is held and tried again later.
void PvoutputClient::refused_alone(SystemState& state, const std::string& system_id,
                                   PvoutputStatus status, const std::string& reason,
                                   WriteBatch& marks) {
    const auto now = now_s();
    state.not_before_s = now + pace_s();
    if (!state.suspect) {
        state.suspect = std::move(status);
        state.suspect_reason = reason;
        return;
    }
    if (refusal_cause(reason) != refusal_cause(state.suspect_reason)) {
        // Two different reasons: each status's own.
        PvoutputQueue::mark_sent(marks, {*state.suspect}, {false}, now, state.suspect_reason);
        state.suspect = std::move(status);
        state.suspect_reason = reason;
        return;
    }
    state.suspect.reset();
    state.alone = 0;
    state.held = reason;
    state.not_before_s = now + config_.max_backoff.count();
    snapshot_.last_error = "system " + system_id + ": PVOutput refuses every status: " + reason;
    if (first_time(state, "pvoutput_statuses_held", reason))
        log_.warn("pvoutput_statuses_held",
                  {{"system", system_id},
                   {"reason", reason},
                   {"action", "PVOutput refuses the system's statuses, not one of them: none is "
                              "marked rejected, they stay queued and go again in " +
                                  std::to_string(config_.max_backoff.count()) +
                                  " s; fix the system on PVOutput (its size, …)"}});
}

bool PvoutputClient::first_time(SystemState& state, const std::string& event,
                                const std::string& reason) {
    return state.logged.insert(event + " " + refusal_cause(reason)).second;
}

std::int64_t PvoutputClient::pace_s() const {
    const int limit = snapshot_.request_limit.value_or(config_.donor ? 300 : 60);
    return std::max<std::int64_t>(1, 3600 / std::max(1, limit));
}

// PVOutput answers 401/403 for a key and system id it will not take: that system waits for a fix
// and a restart, the others go on.
void PvoutputClient::refuse_system(const std::string& system_id, int http_status,
                                   const std::string& reason) {
    systems_[system_id].refused = reason;
    snapshot_.refused_systems[system_id] = reason;
    snapshot_.last_error = reason; // the system is in refused_systems and the log line
    const bool named = std::any_of(
        config_.mapping.system_of.begin(), config_.mapping.system_of.end(),
        [&](const auto& entry) { return entry.first != "*" && entry.second == system_id; });
    const bool every_system_refused = systems_to_send().empty();
    if (every_system_refused) {
        snapshot_.stopped = true;
        snapshot_.state = "stopped";
    }
    log_.error(
        "pvoutput_refused",
        {{"system", system_id},
         {"status", std::to_string(http_status)},
         {"reason", reason},
         {"action", "uploads to system " + system_id + " stopped: check --pvoutput-api-key and " +
                        (named ? "the system id in --pvoutput-systems" : "--pvoutput-system-id") +
                        ", then restart; its statuses stay queued" +
                        (every_system_refused ? "" : "; the other systems go on")}});
}

std::vector<std::string> PvoutputClient::systems_to_send() const {
    std::vector<std::string> systems;
    for (const auto& [ecu, system] : config_.mapping.system_of) {
        const auto state = systems_.find(system);
        if (state != systems_.end() && !state->second.refused.empty())
            continue;
        if (std::find(systems.begin(), systems.end(), system) == systems.end())
            systems.push_back(system);
    }
    return systems;
}

void PvoutputClient::back_off(const std::string& error) {
    backoff_ =
        backoff_.count() == 0 ? config_.first_backoff : std::min(backoff_ * 2, config_.max_backoff);
    not_before_s_ = now_s() + backoff_.count();
    snapshot_.waiting_until_unix = not_before_s_;
    snapshot_.state = "backing off";
    snapshot_.last_error = error;
    busy_ = false;
    log_.warn("pvoutput_unreachable", {{"error", error},
                                       {"retry_in_s", std::to_string(backoff_.count())},
                                       {"action", "statuses stay queued and go once it answers"}});
    schedule(config_.poll);
}

PvoutputSnapshot PvoutputClient::snapshot() {
    try {
        const auto counts = queue_->counts();
        snapshot_.backlog = counts.pending;
        snapshot_.sent = counts.sent;
        snapshot_.rejected = counts.rejected;
        snapshot_.expired = counts.expired;
    } catch (const DatabaseError&) {
        // The last counts stand; the page still shows the rest.
    }
    auto copy = snapshot_;
    if (!copy.stopped && copy.waiting_until_unix == 0 && copy.backlog > 1 &&
        copy.state == "current")
        copy.state = "sending backlog";
    return copy;
}

} // namespace ecu2mqtt
