#include "ecu2mqtt/ledger/ecu_ledger.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>

namespace ecu2mqtt {

namespace {

// No time zone is further than 14 h from UTC; an hour more allows for a drifting RTC. An offset
// beyond this is a broken clock, never adopted.
constexpr std::int64_t kPlausibleOffsetS = 15 * 3600;
// Samples of one offset differ by upload delay and jitter; re-sends in a burst differ by whole
// five-minute steps, so they never agree with each other.
constexpr std::int64_t kAgreementS = 150;
constexpr std::int64_t kWarnOffsetS = 10 * 60;
constexpr std::size_t kOffsetSamples = 7;
constexpr std::size_t kKeptMemory = EcuLedger::kKeptMemory;
constexpr std::int64_t kUploadPeriodS = 5 * 60;

std::int64_t seconds_of(EcuLedger::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string number(double value) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.3f", value);
    return buffer;
}

std::uint64_t fingerprint(const RealtimeUpload& upload) {
    std::string text = format_compact(upload.timestamp) + "|" + number(upload.lifetime_energy_kwh) +
                       "|" + number(upload.power_w);
    for (const auto& inv : upload.inverters) {
        text += "|" + inv.uid + ":" + number(inv.power_w);
        for (const auto& ch : inv.channels)
            text += "," + number(ch.power_w) + "/" + number(ch.voltage_v);
    }
    std::uint64_t hash = 14695981039346656037ull; // FNV-1a: stable across builds and restarts
    for (const unsigned char c : text) {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash;
}

std::int64_t median(std::vector<std::int64_t> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

LedgerEvent event(EventLevel level, std::string name,
                  std::vector<std::pair<std::string, std::string>> fields) {
    return {level, std::move(name), std::move(fields)};
}

bool inside(const LedgerGap& gap, const LocalDateTime& t) {
    return t > gap.after && (!gap.before || t < *gap.before);
}

// The same timestamp and the same content. A different reading at a timestamp seen before comes
// from a clock that went back, and is new.
bool earlier(const KeptReading& a, const KeptReading& b) {
    return a.timestamp < b.timestamp;
}

bool is_repeat(const EcuLedgerState& s, const LocalDateTime& t, std::uint64_t fp) {
    const auto [first, last] =
        std::equal_range(s.kept.begin(), s.kept.end(), KeptReading{t, 0}, earlier);
    return std::any_of(first, last, [fp](const auto& kept) { return kept.fingerprint == fp; });
}

std::optional<LocalDateTime> oldest_resend(const EcuLedgerState& s) {
    if (s.gaps.empty())
        return std::nullopt;
    return s.gaps.front().after;
}

struct ClockStep {
    bool ahead = false;       // beyond suspect_ahead of the offset known before this upload
    bool adopted = false;     // this upload completed a run agreeing on a new offset
    bool implausible = false; // its offset from the host's UTC is no time zone's
};

void forget_candidate(EcuLedgerState& s) {
    s.candidate_offset.clear();
    s.candidate_readings.clear();
}

// Feeds one trustworthy-enough sample, of the reading with fingerprint `fp`, to the clock model
// of `s`.
ClockStep learn_offset(EcuLedgerState& s, std::int64_t sample, std::uint64_t fp, bool ahead,
                       const LedgerConfig& c, std::vector<LedgerEvent>& events) {
    ClockStep step{ahead, false};
    const bool plausible = std::llabs(sample) <= kPlausibleOffsetS;
    if (!plausible) {
        step.implausible = true;
        forget_candidate(s);
        events.push_back(event(EventLevel::Warn, "ecu_clock_implausible",
                               {{"offset_s", std::to_string(sample)},
                                {"action", "reading not used to learn the ECU clock"}}));
        return step;
    }
    if (!s.offset_s) {
        s.offset_s = sample;
        s.offset_samples = {sample};
        events.push_back(
            event(std::llabs(sample) > kWarnOffsetS ? EventLevel::Warn : EventLevel::Info,
                  "ecu_clock_offset_learned",
                  {{"offset_s", std::to_string(sample)},
                   {"note", "today's energy follows the ECU's own day"}}));
        return step;
    }
    if (std::llabs(sample - *s.offset_s) <= kAgreementS) {
        forget_candidate(s);
        s.offset_samples.push_back(sample);
        if (s.offset_samples.size() > kOffsetSamples)
            s.offset_samples.erase(s.offset_samples.begin());
        s.offset_s = median(s.offset_samples);
        return step;
    }
    if (!s.candidate_offset.empty() &&
        std::llabs(sample - median(s.candidate_offset)) > kAgreementS)
        forget_candidate(s);
    s.candidate_offset.push_back(sample);
    s.candidate_readings.push_back(fp);
    if (static_cast<int>(s.candidate_offset.size()) < c.adopt_after)
        return step;
    const std::int64_t before = *s.offset_s;
    s.offset_samples = s.candidate_offset;
    s.offset_s = median(s.candidate_offset);
    forget_candidate(s);
    step.adopted = true;
    events.push_back(
        event(std::llabs(*s.offset_s) > kWarnOffsetS ? EventLevel::Warn : EventLevel::Info,
              "ecu_clock_offset_changed",
              {{"from_s", std::to_string(before)},
               {"to_s", std::to_string(*s.offset_s)},
               {"uploads_agreeing", std::to_string(c.adopt_after)}}));
    return step;
}

void remember_kept(EcuLedgerState& s, KeptReading kept) {
    s.kept.insert(std::upper_bound(s.kept.begin(), s.kept.end(), kept, earlier), kept);
    if (s.kept.size() > kKeptMemory)
        s.kept.erase(s.kept.begin(), s.kept.end() - static_cast<std::ptrdiff_t>(kKeptMemory));
}

void sort_gaps(EcuLedgerState& s) {
    std::sort(s.gaps.begin(), s.gaps.end(),
              [](const LedgerGap& a, const LedgerGap& b) { return a.after < b.after; });
}

// Moves the start of `gap` to `t`, kept inside it. A reading lost before `t` that the ECU skipped
// in its re-sends is taken as one it no longer has, and given up; one it did send again, and that
// was lost again, is still there to ask for: it stays missing, in a gap of its own ending at `t`.
std::optional<LedgerGap> advance(LedgerGap& gap, const LocalDateTime& t) {
    std::optional<LedgerGap> earlier;
    for (auto m = gap.missing.begin(); m != gap.missing.end() && *m < t; ++m) {
        if (!gap.lost_again.contains(*m))
            continue;
        if (!earlier) {
            earlier.emplace();
            earlier->after = gap.after;
            earlier->before = t;
            earlier->opened_at_s = gap.opened_at_s;
        }
        earlier->missing.insert(*m);
        earlier->lost_again.insert(*m);
    }
    gap.after = t;
    gap.missing.erase(gap.missing.begin(), gap.missing.upper_bound(t));
    gap.lost_again.erase(gap.lost_again.begin(), gap.lost_again.upper_bound(t));
    return earlier;
}

// A kept reading fills the gap it falls in: re-sends come oldest first, so the hole now starts
// after it. That holds for a live one too: readings lost while the store failed are all newer
// than the last kept live reading, so their re-sends come back live. Only a live reading past
// everything known lost is where an open hole ends.
void fill_gaps(EcuLedgerState& s, const LocalDateTime& t, bool live,
               std::vector<LedgerEvent>& events) {
    std::vector<LedgerGap> split_off;
    for (auto it = s.gaps.begin(); it != s.gaps.end();) {
        LedgerGap& gap = *it;
        if (inside(gap, t)) {
            const bool past_losses = gap.missing.empty() || *gap.missing.rbegin() < t;
            if (live && past_losses) {
                if (!gap.before)
                    gap.before = t;
            } else {
                if (auto earlier = advance(gap, t))
                    split_off.push_back(std::move(*earlier));
                if (live && gap.missing.empty())
                    gap.before = t; // the last reading lost is back, and nothing kept is newer
                events.push_back(event(EventLevel::Info, "gap_advanced",
                                       {{"after", format_iso(gap.after)},
                                        {"missing", std::to_string(gap.missing.size())}}));
            }
        }
        if (gap.before && gap.missing.empty()) {
            events.push_back(
                event(EventLevel::Info, "gap_closed",
                      {{"after", format_iso(gap.after)}, {"before", format_iso(*gap.before)}}));
            it = s.gaps.erase(it);
        } else {
            ++it;
        }
    }
    if (split_off.empty())
        return;
    s.gaps.insert(s.gaps.end(), split_off.begin(), split_off.end());
    sort_gaps(s);
}

// A live reading lost leaves a hole open at its end until the next live one is kept; a late one
// lies between kept readings.
void open_gap(EcuLedgerState& s, const LocalDateTime& t, bool live, std::int64_t now_s,
              std::vector<LedgerEvent>& events) {
    for (auto& gap : s.gaps)
        if (inside(gap, t)) {
            if (!gap.missing.insert(t).second)
                gap.lost_again.insert(t); // sent again when asked: the ECU still has it
            return;
        }
    LedgerGap gap;
    const auto next = std::upper_bound(s.kept.begin(), s.kept.end(), KeptReading{t, 0}, earlier);
    if (next != s.kept.begin()) {
        auto previous = std::prev(next);
        while (previous != s.kept.begin() && previous->timestamp == t)
            --previous;
        gap.after = previous->timestamp < t ? previous->timestamp : add_seconds(t, -kUploadPeriodS);
    } else {
        gap.after = add_seconds(t, -kUploadPeriodS); // nothing kept before: ask from just before
    }
    if (!live && next != s.kept.end())
        gap.before = next->timestamp;
    gap.missing.insert(t);
    gap.opened_at_s = now_s;
    events.push_back(event(EventLevel::Warn, "gap_opened",
                           {{"after", format_iso(gap.after)}, {"lost", format_iso(t)}}));
    s.gaps.push_back(std::move(gap));
    sort_gaps(s);
}

// What the counter model says of a reading the clock model would keep.
struct CounterStep {
    bool suspect = false; // off the trusted counter by more than the plant can make: not applied
    bool adopted = false; // completes a run of uploads agreeing on a new level: applied as such
    double first_kwh = 0; // the run's first reading: where the new level starts
    double ceiling_kw = 0;
};

// Judges `upload` against the trusted counter of `s`; `run` (the state's candidate_counter) is
// what it becomes once the upload is kept.
CounterStep judge_counter(const EcuLedgerState& s, const RealtimeUpload& upload, bool live,
                          std::int64_t now_s, int adopt_after, std::vector<CounterSample>& run) {
    CounterStep step;
    step.ceiling_kw = counter_model::ceiling_kw(s.inverters, upload);
    if (!s.live)
        return step; // nothing trusted yet: the first reading sets the counter
    const CounterSample trusted{s.live->timestamp, s.live->received_s, s.live->lifetime_kwh};
    const CounterSample sample{upload.timestamp, now_s, upload.lifetime_energy_kwh};
    if (!live) {
        step.suspect = !counter_model::fits_before(trusted, sample, step.ceiling_kw);
        return step;
    }
    const auto fit = counter_model::fit_after(trusted, sample, step.ceiling_kw);
    if (fit == counter_model::Fit::Agrees) {
        run.clear(); // the outliers before it are forgotten
        return step;
    }
    if (counter_model::extend_run(run, sample, step.ceiling_kw, adopt_after)) {
        step.adopted = true;
        step.first_kwh = run.front().lifetime_kwh;
        run.clear();
        return step;
    }
    // A drop is kept at the higher value until a run adopts it; a jump is not used at all.
    step.suspect = fit == counter_model::Fit::Jump;
    return step;
}

// Today's energy before a new counter level, as far as the plant can have made it since the ECU's
// midnight: a state that had taken a bogus counter does not carry its bogus day on.
double carried_today(const EcuLedgerState& s, const LocalDateTime& t, double ceiling_kw) {
    const double since_midnight_h = (t.hour * 3600 + t.minute * 60 + t.second) / 3600.0;
    const double most = ceiling_kw * since_midnight_h + counter_model::kRoundingKwh;
    return std::min(s.daily.today_kwh().value_or(0.0), most);
}

void learn_inverters(EcuLedgerState& s, const RealtimeUpload& upload, std::int64_t now_s,
                     const LedgerConfig& c, UploadDecision& d) {
    for (const auto& inv : upload.inverters) {
        auto it = s.inverters.find(inv.uid);
        if (it == s.inverters.end()) {
            if (s.inverters.size() >= c.max_inverters) {
                d.refused_inverters.push_back(inv.uid);
                continue;
            }
            it = s.inverters.emplace(inv.uid, LedgerInverter{inv.uid, {}, {}, 0, 0}).first;
            d.new_inverters.push_back(inv.uid);
        }
        it->second.model_code = inv.model_code;
        it->second.model = inv.model;
        it->second.channels = static_cast<int>(inv.channels.size());
        it->second.last_seen_s = std::max(it->second.last_seen_s, now_s);
    }
    if (!d.refused_inverters.empty())
        d.events.push_back(event(EventLevel::Warn, "inverters_refused",
                                 {{"count", std::to_string(d.refused_inverters.size())},
                                  {"first", d.refused_inverters.front()},
                                  {"limit", std::to_string(c.max_inverters)}}));
}

// The state once `upload` is kept: live state, day, repeat memory, gaps and inverters.
void keep_reading(EcuLedgerState& s, const RealtimeUpload& upload, bool live, std::uint64_t fp,
                  std::int64_t now_s, const LedgerConfig& c, const CounterStep& counter,
                  UploadDecision& d) {
    const LocalDateTime& t = upload.timestamp;
    d.counter_kwh = upload.lifetime_energy_kwh;
    if (live) {
        const double shown = s.live ? s.live->lifetime_kwh : upload.lifetime_energy_kwh;
        d.counter_kwh = std::max(shown, upload.lifetime_energy_kwh);
        if (counter.adopted) {
            d.counter_kwh = upload.lifetime_energy_kwh;
            s.daily.restart_counter(counter.first_kwh, carried_today(s, t, counter.ceiling_kw));
            d.events.push_back(event(
                EventLevel::Warn, "lifetime_energy_level_adopted",
                {{"was", number(shown)},
                 {"now", number(upload.lifetime_energy_kwh)},
                 {"uploads_agreeing", std::to_string(c.adopt_after)},
                 {"note", "a counter reset or another ECU; Home Assistant takes a drop as a meter "
                          "reset"}}));
        } else if (upload.lifetime_energy_kwh < shown) {
            d.events.push_back(event(EventLevel::Warn, "lifetime_energy_went_down",
                                     {{"was", number(shown)},
                                      {"now", number(upload.lifetime_energy_kwh)},
                                      {"action", "keeping the higher value"}}));
        }
        s.live = LiveReading{t, upload.power_w, d.counter_kwh, upload.inverters_online, now_s};
    }
    s.daily.record(date_of(t), d.counter_kwh);
    remember_kept(s, {t, fp});
    d.remembered = KeptReading{t, fp};
    fill_gaps(s, t, live, d.events);
    learn_inverters(s, upload, now_s, c, d);
    if (live)
        for (const auto& [uid, known] : s.inverters)
            if (std::none_of(upload.inverters.begin(), upload.inverters.end(),
                             [&uid = uid](const InverterReading& r) { return r.uid == uid; }))
                d.absent_inverters.push_back(uid);
}

} // namespace

const char* verdict_name(UploadVerdict verdict) {
    switch (verdict) {
    case UploadVerdict::Live:
        return "live";
    case UploadVerdict::Late:
        return "late";
    case UploadVerdict::Repeat:
        return "repeat";
    case UploadVerdict::ClockSuspect:
        return "clock_suspect";
    case UploadVerdict::CounterSuspect:
        return "counter_suspect";
    }
    return "unknown";
}

EcuLedger::EcuLedger(std::string ecu_id, LedgerConfig config)
    : ecu_id_(std::move(ecu_id)), config_(config) {}

UploadDecision EcuLedger::decide(const RealtimeUpload& upload, TimePoint received) const {
    const std::int64_t now_s = seconds_of(received);
    const LocalDateTime& t = upload.timestamp;
    const std::int64_t sample = to_epoch_seconds(t) - now_s;
    const std::uint64_t fp = fingerprint(upload);

    UploadDecision d;
    d.upload = std::make_shared<const RealtimeUpload>(upload);
    d.received = received;
    d.came_online = !state_.online;
    d.revision = state_.revision;

    EcuLedgerState base = state_;
    base.online = true;
    base.last_heard_s = now_s;
    base.ecu_model = upload.ecu_model;
    ++base.revision;

    const bool repeat = is_repeat(state_, t, fp);
    const bool newer = !state_.live || t > state_.live->timestamp;
    const bool ahead = state_.offset_s ? sample - *state_.offset_s > config_.suspect_ahead.count()
                                       : sample > kPlausibleOffsetS;
    const bool in_gap = std::any_of(state_.gaps.begin(), state_.gaps.end(),
                                    [&](const LedgerGap& g) { return inside(g, t); });
    // Older than any gap may be asked for, and not in one: a clock reset (to 2000, say), not a
    // reading to keep or to ask again for.
    const std::int64_t expiry_s =
        std::chrono::duration_cast<std::chrono::seconds>(config_.gap_expiry).count();
    const bool too_old = state_.offset_s && !in_gap && sample - *state_.offset_s < -expiry_s;
    // An older timestamp with at least the newest lifetime is a new reading from a clock that
    // went back; one the ECU re-sends to fill a gap is old on purpose and says nothing of its
    // clock.
    // A counter no plant could have reached teaches the clock nothing either.
    std::vector<CounterSample> counter_run = state_.candidate_counter;
    const CounterStep counter =
        judge_counter(state_, upload, newer, now_s, config_.adopt_after, counter_run);
    const bool clock_went_back = !newer && !in_gap && state_.live && !counter.suspect &&
                                 upload.lifetime_energy_kwh >= state_.live->lifetime_kwh;
    // Only a reading kept teaches the clock, and only once: identical re-sends of one that could
    // not be kept (a full disk) would each count as another agreeing sample and walk the offset.
    // A reading known lost and now sent again is old on purpose, like any re-send.
    const bool resent = std::any_of(state_.gaps.begin(), state_.gaps.end(),
                                    [&](const LedgerGap& g) { return g.missing.contains(t); });
    const bool counted =
        std::find(state_.candidate_readings.begin(), state_.candidate_readings.end(), fp) !=
        state_.candidate_readings.end();
    auto kept = std::make_shared<EcuLedgerState>(base);
    auto lost = std::make_shared<EcuLedgerState>(base);

    ClockStep step{ahead, false};
    std::vector<LedgerEvent> clock_events;
    if (!repeat && !counted && !resent && !too_old && !counter.suspect &&
        (newer || ahead || clock_went_back))
        step = learn_offset(*kept, sample, fp, ahead, config_, clock_events);

    if (repeat)
        d.verdict = UploadVerdict::Repeat;
    // A new reading dated a day or more back is no backfill (not in a gap) and no zone's time:
    // kept, it would land in the history and PVOutput at a wrong time.
    else if ((step.ahead && !step.adopted) || too_old || (clock_went_back && step.implausible))
        d.verdict = UploadVerdict::ClockSuspect;
    else if (newer || step.adopted)
        d.verdict = UploadVerdict::Live;
    else
        d.verdict = UploadVerdict::Late;

    const bool by_clock_live = d.verdict == UploadVerdict::Live;
    if ((d.verdict == UploadVerdict::Live || d.verdict == UploadVerdict::Late) && counter.suspect)
        d.verdict = UploadVerdict::CounterSuspect;

    if (d.verdict == UploadVerdict::CounterSuspect)
        d.events.push_back(
            event(EventLevel::Warn, "upload_counter_suspect",
                  {{"timestamp", format_iso(t)},
                   {"lifetime_kwh", number(upload.lifetime_energy_kwh)},
                   {"trusted_kwh", number(state_.live->lifetime_kwh)},
                   {"action", "answered and kept raw; not used for state, day or energy unless " +
                                  std::to_string(config_.adopt_after) +
                                  " uploads in a row agree on it"}}));
    if (d.verdict == UploadVerdict::ClockSuspect)
        d.events.push_back(
            event(EventLevel::Warn, "upload_clock_suspect",
                  {{"timestamp", format_iso(t)},
                   {"off_by_s", std::to_string(sample - state_.offset_s.value_or(0))},
                   {"action", "answered and kept raw; not used for state, day or energy"}}));
    if (d.verdict == UploadVerdict::Repeat)
        d.events.push_back(
            event(EventLevel::Info, "upload_already_kept", {{"timestamp", format_iso(t)}}));

    d.events_if_not_kept = d.events; // what the verdict said holds either way
    d.events.insert(d.events.begin(), clock_events.begin(), clock_events.end()); // once kept
    const bool keeps_reading = d.verdict == UploadVerdict::Live || d.verdict == UploadVerdict::Late;
    if (keeps_reading) {
        keep_reading(*kept, upload, d.verdict == UploadVerdict::Live, fp, now_s, config_, counter,
                     d);
        open_gap(*lost, t, d.verdict == UploadVerdict::Live, now_s, d.events_if_not_kept);
    }
    if (keeps_reading || d.verdict == UploadVerdict::CounterSuspect)
        kept->candidate_counter = std::move(counter_run); // a reading not kept teaches nothing
    // Answered as if kept, so that a gap does not ask for it again and again.
    if (d.verdict == UploadVerdict::CounterSuspect)
        fill_gaps(*kept, t, by_clock_live, d.events);

    d.resend_from = oldest_resend(*kept);
    d.resend_from_if_not_kept = oldest_resend(*lost);

    d.state_lifetime_kwh = kept->live ? kept->live->lifetime_kwh : 0.0;
    d.today_kwh = kept->daily.today_kwh();
    d.ecu_day = kept->daily.day().value_or(date_of(t));
    if (kept->offset_s)
        d.clock_offset = std::chrono::seconds(*kept->offset_s);
    d.if_kept = std::move(kept);
    d.if_not_kept = std::move(lost);
    return d;
}

void EcuLedger::commit(const UploadDecision& decision) {
    if (decision.revision != state_.revision) {
        // Something (a tick) changed the ledger since the decision: decide again on what is now.
        commit(decide(*decision.upload, decision.received));
        return;
    }
    state_ = *decision.if_kept;
}

void EcuLedger::not_kept(const UploadDecision& decision) {
    if (decision.revision != state_.revision) {
        not_kept(decide(*decision.upload, decision.received));
        return;
    }
    state_ = *decision.if_not_kept;
}

EcuLedger::Tick EcuLedger::tick(TimePoint now) {
    const std::int64_t now_s = seconds_of(now);
    Tick result;
    EcuLedgerState& s = state_;
    bool changed = false;

    if (s.online && now_s - s.last_heard_s > config_.offline_after.count()) {
        s.online = false;
        result.went_offline = true;
        result.events.push_back(event(EventLevel::Warn, "ecu_offline",
                                      {{"silent_for_s", std::to_string(now_s - s.last_heard_s)}}));
        changed = true;
    }
    const TimeZone* day_zone = zone_giving_day(time_zone_.get(), now_s, s.offset_s);
    zone_gives_day_ = day_zone != nullptr;
    const auto ecu_now_s = ecu_wall_clock_s(now_s, day_zone, s.offset_s);
    if (ecu_now_s && s.daily.day()) {
        const LocalDate ecu_today = date_of(from_epoch_seconds(*ecu_now_s));
        if (ecu_today > *s.daily.day()) {
            const auto before = s.daily.today_kwh();
            s.daily.roll_to(ecu_today);
            const auto after = s.daily.today_kwh();
            if (before != after) {
                result.today_reset_to = after;
                result.events.push_back(event(EventLevel::Info, "daily_energy_reset",
                                              {{"ecu_day", format_iso(ecu_today)}}));
            }
            changed = true;
        }
    }
    const std::int64_t forget_s =
        std::chrono::duration_cast<std::chrono::seconds>(config_.forget_inverter_after).count();
    for (auto it = s.inverters.begin(); it != s.inverters.end();) {
        if (now_s - it->second.last_seen_s > forget_s) {
            result.forgotten_inverters.push_back(it->first);
            result.events.push_back(
                event(EventLevel::Info, "inverter_forgotten",
                      {{"uid", it->first},
                       {"unseen_for_s", std::to_string(now_s - it->second.last_seen_s)}}));
            it = s.inverters.erase(it);
            changed = true;
        } else {
            ++it;
        }
    }
    const std::int64_t expiry_s =
        std::chrono::duration_cast<std::chrono::seconds>(config_.gap_expiry).count();
    for (auto it = s.gaps.begin(); it != s.gaps.end();) {
        if (now_s - it->opened_at_s > expiry_s) {
            result.events.push_back(
                event(EventLevel::Warn, "gap_expired",
                      {{"after", format_iso(it->after)},
                       {"missing", std::to_string(it->missing.size())},
                       {"action", "no longer asking for a re-send; readings in it are lost"}}));
            it = s.gaps.erase(it);
            changed = true;
        } else {
            ++it;
        }
    }
    if (changed)
        ++s.revision;
    return result;
}

void EcuLedger::set_time_zone(std::shared_ptr<const TimeZone> zone) {
    time_zone_ = std::move(zone);
    zone_gives_day_ = zone_giving_day(time_zone_.get(), state_.last_heard_s, state_.offset_s);
}

std::optional<std::chrono::seconds> EcuLedger::clock_offset() const {
    if (!state_.offset_s)
        return std::nullopt;
    return std::chrono::seconds(*state_.offset_s);
}

std::optional<LocalDateTime> EcuLedger::resend_from() const {
    return oldest_resend(state_);
}

} // namespace ecu2mqtt
