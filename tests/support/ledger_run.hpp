// Drives an EcuLedger with a simulated ECU over days and weeks, checking its promises after every
// step: lifetime never drops, today's energy matches the ECU's own sum, each reading is kept once,
// and the live state shows the newest trustworthy reading.
#pragma once

#include "ecu2mqtt/ledger/ecu_ledger.hpp"
#include "support/ecu_simulator.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>

namespace test {

using ecu2mqtt::EcuLedger;
using ecu2mqtt::LedgerConfig;
using ecu2mqtt::UploadDecision;
using ecu2mqtt::UploadVerdict;

inline std::chrono::system_clock::time_point at(std::int64_t utc_s) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(utc_s));
}

class LedgerRun {
  public:
    static constexpr std::int64_t kPeriodS = 300;
    static constexpr std::int64_t kDelayS = 17; // from a reading to its arrival

    LedgerRun(EcuSimulator& sim, std::int64_t start_utc_s, LedgerConfig config = {})
        : sim_(sim), config_(config), ledger_(sim.id(), config), now_s_(start_utc_s) {}

    // Whether a reading arriving at `received_s` can be kept (false: the store failed).
    std::function<bool(std::int64_t received_s)> keep = [](std::int64_t) { return true; };
    // How many readings the ECU sends again after a reply that asks for them.
    std::size_t resend_limit = std::numeric_limits<std::size_t>::max();
    // Set where the ECU's clock really changes: readings may then wait for the new offset.
    bool clock_changes = false;

    EcuLedger& ledger() { return ledger_; }
    std::int64_t now() const { return now_s_; }
    const std::map<std::size_t, UploadVerdict>& kept() const { return kept_; }
    std::map<LocalDate, int>& resets() { return resets_; }
    int verdicts(UploadVerdict v) const {
        return verdict_count_.count(v) ? verdict_count_.at(v) : 0;
    }

    // Five-minute steps up to `until_utc_s`: the periodic check, then the ECU's upload.
    void run_until(std::int64_t until_utc_s) {
        while (now_s_ + kPeriodS <= until_utc_s) {
            now_s_ += kPeriodS;
            tick();
            if (sim_.uploads_at(now_s_))
                deliver_new();
        }
    }

    void tick() {
        const auto result = ledger_.tick(at(now_s_));
        if (result.today_reset_to)
            CHECK(*result.today_reset_to == 0.0);
        const auto offset = ledger_.clock_offset();
        const std::int64_t truth = ecu2mqtt::to_epoch_seconds(sim_.clock_time(now_s_)) - now_s_;
        // The learned offset includes the upload delay: midnight may be seen that much late.
        if (offset && std::llabs(offset->count() - truth) <= 150 && ledger_.state().daily.day()) {
            const auto day = *ledger_.state().daily.day();
            CHECK((day == ecu2mqtt::date_of(sim_.clock_time(now_s_)) ||
                   day == ecu2mqtt::date_of(sim_.clock_time(now_s_ - 150))));
        }
        check();
    }

    UploadDecision deliver_new() {
        const SimulatedReading& r = sim_.produce(now_s_);
        auto decision = deliver(r, now_s_ + kDelayS);
        if (const auto from = ledger_.resend_from(); from && resend_limit > 0)
            resend(*from, r.index);
        return decision;
    }

    // The ECU sends what follows `from` again, oldest first, up to resend_limit readings.
    void resend(const LocalDateTime& from, std::size_t before_index) {
        std::size_t sent = 0;
        for (const auto& r : sim_.readings()) {
            if (r.index >= before_index || sent >= resend_limit)
                break;
            if (r.glitch || r.upload.timestamp <= from)
                continue;
            deliver(r, now_s_ + kDelayS + 2 + static_cast<std::int64_t>(sent));
            ++sent;
        }
    }

    // The service restarts: the ledger comes back from what it saved.
    void restart() {
        const auto saved = nlohmann::json::parse(ledger_.to_json().dump());
        ledger_ = EcuLedger::from_json(saved, config_, at(now_s_));
        CHECK(ledger_.to_json() == saved);
    }

    UploadDecision deliver(const SimulatedReading& r, std::int64_t received_s) {
        auto d = ledger_.decide(r.upload, at(received_s));
        ++verdict_count_[d.verdict];
        const bool keeps = d.verdict == UploadVerdict::Live || d.verdict == UploadVerdict::Late;
        if (d.verdict == UploadVerdict::Repeat)
            CHECK(kept_twin(r)); // a repeat of a reading never kept would be a loss
        if (d.verdict == UploadVerdict::ClockSuspect)
            CHECK((r.glitch || clock_changes));
        if (r.glitch)
            CHECK(d.verdict == UploadVerdict::ClockSuspect);
        // The simulated counter is real: whatever the clock does, it is never suspect.
        CHECK(d.verdict != UploadVerdict::CounterSuspect);
        if (keeps && !keep(received_s)) {
            ledger_.not_kept(d);
            CHECK(ledger_.resend_from() == d.resend_from_if_not_kept);
            CHECK(ledger_.resend_from().has_value());
        } else {
            ledger_.commit(d);
            if (keeps) {
                CHECK(kept_.count(r.index) == 0); // no reading kept twice
                kept_[r.index] = d.verdict;
            }
            if (d.verdict == UploadVerdict::Live) {
                live_index_ = r.index;
                CHECK(d.state_lifetime_kwh >= r.upload.lifetime_energy_kwh - 1e-9);
            }
        }
        check();
        return d;
    }

    void check() {
        const auto& s = ledger_.state();
        if (s.daily.day() && s.daily.day() != day_) {
            // A new ECU day, by its midnight or by its first upload: today's energy restarts once.
            if (day_)
                CHECK(*s.daily.day() > *day_);
            day_ = s.daily.day();
            CHECK(++resets_[*day_] == 1);
            CHECK(*s.daily.today_kwh() == Approx(expected_today(*day_)).margin(0.002));
        }
        if (s.live) {
            CHECK(s.live->lifetime_kwh >= shown_lifetime_ - 1e-9);
            shown_lifetime_ = s.live->lifetime_kwh;
            REQUIRE(live_index_);
            CHECK(s.live->timestamp == sim_.readings()[*live_index_].upload.timestamp);
            // Kept readings newer than the live one exist only while a clock change waits for
            // enough uploads to agree on it.
            std::size_t newer = 0;
            for (auto it = kept_.upper_bound(*live_index_); it != kept_.end(); ++it)
                ++newer;
            CHECK(newer <= (clock_changes ? static_cast<std::size_t>(config_.adopt_after - 1) : 0));
        }
        if (const auto today = s.daily.today_kwh()) {
            CHECK(*today >= 0.0);
            CHECK(*today == Approx(expected_today(*s.daily.day())).margin(0.002));
        }
    }

    // The ECU's own count for `day`: what it produced in readings of that day, up to the newest
    // of them that was kept.
    double expected_today(const LocalDate& day) const {
        std::optional<std::size_t> newest;
        for (const auto& [index, verdict] : kept_)
            if (sim_.readings()[index].day == day)
                newest = index;
        if (!newest)
            return 0.0;
        double sum = 0;
        for (const auto& r : sim_.readings())
            if (r.index <= *newest && r.day == day && r.index != first_kept())
                sum += r.energy_kwh;
        return sum;
    }

    // Every reading the ECU made with a sound clock was kept in the end (or its identical twin,
    // when a clock going back at night repeated it).
    void check_none_lost() const {
        for (const auto& r : sim_.readings())
            if (!r.glitch) {
                INFO("reading " << r.index << " at " << ecu2mqtt::format_iso(r.upload.timestamp));
                CHECK(kept_twin(r));
            }
    }

    // This reading, or one with the same timestamp and content, was kept.
    bool kept_twin(const SimulatedReading& r) const {
        for (const auto& [index, verdict] : kept_) {
            const auto& other = sim_.readings()[index].upload;
            if (other.timestamp == r.upload.timestamp &&
                other.lifetime_energy_kwh == r.upload.lifetime_energy_kwh &&
                other.power_w == r.upload.power_w &&
                other.inverters.size() == r.upload.inverters.size())
                return true;
        }
        return false;
    }

  private:
    // The first reading ever kept starts the count: what came before it is not known.
    std::size_t first_kept() const { return kept_.empty() ? 0 : kept_.begin()->first; }

    EcuSimulator& sim_;
    LedgerConfig config_;
    EcuLedger ledger_;
    std::int64_t now_s_;
    std::map<std::size_t, UploadVerdict> kept_;
    std::map<UploadVerdict, int> verdict_count_;
    std::map<LocalDate, int> resets_; // ECU days begun, from the first one seen
    std::optional<LocalDate> day_;
    std::optional<std::size_t> live_index_;
    double shown_lifetime_ = 0;
};

} // namespace test
