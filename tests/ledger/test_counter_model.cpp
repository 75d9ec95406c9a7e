// The lifetime counter's model: forged and glitched counters are not applied, a real reset or a
// new ECU is adopted once uploads in a row agree on it, and no output ever shows more energy
// than the plant made.
#include "ecu2mqtt/ledger/ecu_ledger.hpp"
#include "ecu2mqtt/tools/solar_simulation.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

using namespace ecu2mqtt;

namespace test_counter_model {
namespace {

constexpr std::int64_t kHost = 1780000000; // host UTC second at which the ECU's clock reads kNoon
const LocalDateTime kNoon{2026, 5, 28, 12, 0, 0};
const std::string kEcu = "216000000042";

std::chrono::system_clock::time_point host(std::int64_t plus_s) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(kHost + plus_s));
}

// An upload stamped `seconds` after kNoon by the ECU's clock: two YC600 (four channels).
RealtimeUpload upload_after(std::int64_t seconds, double lifetime_kwh, double watts = 200) {
    RealtimeUpload u;
    u.signature = "APS18";
    u.ecu_id = kEcu;
    u.ecu_model = "ECU-R";
    u.timestamp = add_seconds(kNoon, seconds);
    u.lifetime_energy_kwh = lifetime_kwh;
    for (int i = 0; i < 2; ++i) {
        InverterReading inv;
        inv.uid = std::to_string(408000100000LL + i);
        inv.model_code = "408";
        inv.model = "YC600";
        inv.power_w = watts;
        inv.channels = {{1, 32, watts / 64, watts / 2, {}}, {2, 32, watts / 64, watts / 2, {}}};
        u.inverters.push_back(inv);
    }
    u.power_w = watts * 2;
    u.inverters_online = 2;
    return u;
}

bool has_event(const UploadDecision& d, const std::string& name) {
    return std::any_of(d.events.begin(), d.events.end(),
                       [&](const LedgerEvent& e) { return e.name == name; });
}

// Decides and commits the upload stamped `minutes` after noon, arriving 17 s later.
UploadDecision deliver(EcuLedger& ledger, double minutes, double lifetime_kwh) {
    const auto at = static_cast<std::int64_t>(minutes * 60);
    auto d = ledger.decide(upload_after(at, lifetime_kwh), host(at + 17));
    ledger.commit(d);
    return d;
}

EcuLedger restarted(const EcuLedger& ledger, std::int64_t at_s) {
    const auto saved = nlohmann::json::parse(ledger.to_json().dump());
    auto loaded = EcuLedger::from_json(saved, {}, host(at_s));
    CHECK(loaded.to_json() == saved);
    return loaded;
}

} // namespace

TEST_CASE("counter: the plant's ceiling comes from the channels known or uploaded") {
    const auto upload = upload_after(0, 1.0);
    std::map<std::string, LedgerInverter> known;
    known["806000000001"] = {"806000000001", "806", "QS1", 4, 0};
    known["806000000002"] = {"806000000002", "806", "QS1", 4, 0};
    known[upload.inverters[0].uid] = {upload.inverters[0].uid, "408", "YC600", 2, 0};
    // 4 + 4 + 2 known, 2 more in the upload: 12 channels at 2 kW.
    CHECK(counter_model::ceiling_kw(known, upload) == Approx(12 * 2.0));
    // Nothing known: 8 channels; 5 inverter blocks that did not decode: 20.
    RealtimeUpload undecoded;
    CHECK(counter_model::ceiling_kw({}, undecoded) == Approx(8 * 2.0));
    undecoded.skipped_blocks.resize(5);
    CHECK(counter_model::ceiling_kw({}, undecoded) == Approx(20 * 2.0));
    // The header's count of inverters online is the sender's to choose: it buys nothing.
    RealtimeUpload boasting;
    boasting.inverters_online = 999;
    CHECK(counter_model::ceiling_kw({}, boasting) == Approx(8 * 2.0));
    CHECK(counter_model::ceiling_kw(known, boasting) == Approx(10 * 2.0));

    const CounterSample from{kNoon, kHost, 100.0};
    const CounterSample five_min{add_seconds(kNoon, 300), kHost + 300, 0};
    // 8 kW for five minutes is 0.667 kWh, and half a kWh of rounding.
    CHECK(counter_model::plausible_rise_kwh(from, five_min, 8.0) == Approx(1.1667).margin(1e-3));
    auto next = five_min;
    next.lifetime_kwh = 101.1;
    CHECK(counter_model::fit_after(from, next, 8.0) == counter_model::Fit::Agrees);
    next.lifetime_kwh = 101.2;
    CHECK(counter_model::fit_after(from, next, 8.0) == counter_model::Fit::Jump);
    next.lifetime_kwh = 99.6;
    CHECK(counter_model::fit_after(from, next, 8.0) == counter_model::Fit::Agrees);
    next.lifetime_kwh = 99.4;
    CHECK(counter_model::fit_after(from, next, 8.0) == counter_model::Fit::Dip);
}

TEST_CASE("counter: a forged header claiming 999 inverters online buys no larger ceiling") {
    // The forger also stamps the upload 83 minutes ahead, short of clock-suspect: 2 YC600 (4
    // channels, at least 8 counted: 16 kW) make at most about 22 kWh in that time, not 11,000.
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 1234.5);
    deliver(ledger, 5, 1234.6);
    auto forged_upload = upload_after(5000, 12234.6);
    forged_upload.inverters_online = 999;
    const auto forged = ledger.decide(forged_upload, host(5 * 60 + 30));
    CHECK(forged.verdict == UploadVerdict::CounterSuspect);
    ledger.commit(forged);
    CHECK(ledger.state().live->lifetime_kwh == Approx(1234.6));
    const auto real = deliver(ledger, 10, 1234.7); // the real ECU is not the suspect one
    CHECK(real.verdict == UploadVerdict::Live);
    CHECK(real.state_lifetime_kwh == Approx(1234.7));
}

TEST_CASE("counter: one forged 999999.9 kWh upload poisons nothing, also after a restart") {
    // The repro of issue 18: three real uploads, a forged one with a plausible newer timestamp,
    // more real uploads, a restart and one more real upload.
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 1000.0);
    deliver(ledger, 5, 1000.1);
    deliver(ledger, 10, 1000.2);

    const auto forged = ledger.decide(upload_after(12 * 60, 999999.9), host(12 * 60 + 3));
    CHECK(forged.verdict == UploadVerdict::CounterSuspect);
    CHECK(std::string(verdict_name(forged.verdict)) == "counter_suspect");
    CHECK(has_event(forged, "upload_counter_suspect"));
    CHECK(forged.state_lifetime_kwh == Approx(1000.2));
    CHECK(*forged.today_kwh == Approx(0.2));
    CHECK_FALSE(forged.resend_from);
    ledger.commit(forged);
    CHECK(ledger.state().live->lifetime_kwh == Approx(1000.2));
    CHECK(ledger.state().live->timestamp == add_seconds(kNoon, 600));

    for (int i = 0; i < 3; ++i) {
        const auto d = deliver(ledger, 15 + 5 * i, 1000.5 + 0.1 * i);
        CHECK(d.verdict == UploadVerdict::Live);
        CHECK_FALSE(has_event(d, "lifetime_energy_went_down"));
        CHECK(d.state_lifetime_kwh == Approx(1000.5 + 0.1 * i));
        CHECK(d.counter_kwh == Approx(1000.5 + 0.1 * i));
        CHECK(*d.today_kwh == Approx(0.5 + 0.1 * i));
    }
    CHECK(ledger.state().candidate_counter.empty()); // the outlier is forgotten

    ledger = restarted(ledger, 30 * 60);
    const auto after = deliver(ledger, 30, 1000.9);
    CHECK(after.verdict == UploadVerdict::Live);
    CHECK(after.state_lifetime_kwh == Approx(1000.9));
    CHECK(*after.today_kwh == Approx(0.9));
    CHECK(ledger.state().live->lifetime_kwh == Approx(1000.9));
}

TEST_CASE("counter: a burst of forged uploads agreeing with each other is not adopted") {
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 1000.0);
    for (int i = 0; i < 5; ++i) {
        const auto d = ledger.decide(upload_after(60 + 600 * i, 999999.9), host(30 + i));
        CHECK(d.verdict == UploadVerdict::CounterSuspect);
        ledger.commit(d);
    }
    CHECK(ledger.state().live->lifetime_kwh == Approx(1000.0));
    CHECK(deliver(ledger, 5, 1000.1).verdict == UploadVerdict::Live);
}

TEST_CASE("counter: three forged uploads between two real ones, two minutes apart, are not "
          "adopted") {
    // A real ECU uploads every five minutes; a forger fits three uploads in between.
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 9000.1);
    deliver(ledger, 5, 9000.2);
    for (int i = 0; i < 3; ++i) {
        const std::int64_t at = 5 * 60 + 20 + 121 * i;
        const auto d = ledger.decide(upload_after(at, 999999.9), host(at + 17));
        CHECK(d.verdict == UploadVerdict::CounterSuspect);
        CHECK_FALSE(has_event(d, "lifetime_energy_level_adopted"));
        ledger.commit(d);
    }
    CHECK(ledger.state().live->lifetime_kwh == Approx(9000.2));
    const auto real = deliver(ledger, 10, 9000.3);
    CHECK(real.verdict == UploadVerdict::Live);
    CHECK(real.state_lifetime_kwh == Approx(9000.3));
    CHECK_FALSE(has_event(real, "lifetime_energy_went_down"));
}

TEST_CASE("counter: a forged late upload touches neither today nor the history") {
    EcuLedger ledger(kEcu, {});
    for (int m = 0; m <= 20; m += 5)
        deliver(ledger, m, 1000.0 + m / 50.0);
    // Older than the live reading, with a counter far above or far below it.
    for (const double lifetime : {999999.9, 0.1}) {
        const auto d = ledger.decide(upload_after(7 * 60, lifetime), host(21 * 60));
        CHECK(d.verdict == UploadVerdict::CounterSuspect);
        ledger.commit(d);
        CHECK(*ledger.state().daily.today_kwh() == Approx(0.4));
    }
    // A real re-send of the same time fits between its neighbours.
    const auto real = ledger.decide(upload_after(7 * 60, 1000.1), host(21 * 60));
    CHECK(real.verdict == UploadVerdict::Late);
    CHECK(real.counter_kwh == Approx(1000.1));
}

TEST_CASE("counter: a counter-suspect re-send in a gap is answered, and the gap moves on") {
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 1000.0);
    ledger.not_kept(ledger.decide(upload_after(300, 1000.1), host(317)));
    deliver(ledger, 10, 1000.2);
    REQUIRE(ledger.resend_from() == kNoon);
    const auto d = ledger.decide(upload_after(300, 5000.0), host(700));
    CHECK(d.verdict == UploadVerdict::CounterSuspect);
    CHECK_FALSE(d.resend_from);
    ledger.commit(d);
    CHECK_FALSE(ledger.resend_from());
}

TEST_CASE("counter: a single dip is kept at the higher value and forgotten") {
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 1000.0);
    const auto dip = deliver(ledger, 5, 12.3);
    CHECK(dip.verdict == UploadVerdict::Live);
    CHECK(dip.state_lifetime_kwh == Approx(1000.0));
    CHECK(dip.counter_kwh == Approx(1000.0));
    CHECK(has_event(dip, "lifetime_energy_went_down"));
    CHECK(ledger.state().candidate_counter.size() == 1);
    const auto next = deliver(ledger, 10, 1000.1);
    CHECK(next.state_lifetime_kwh == Approx(1000.1));
    CHECK(*next.today_kwh == Approx(0.1));
    CHECK(ledger.state().candidate_counter.empty());
}

TEST_CASE("counter: a real reset is adopted after three uploads, across a restart, once") {
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 1000.0);
    deliver(ledger, 5, 1000.4);
    // The ECU's counter restarts near zero.
    const auto first = deliver(ledger, 10, 0.1);
    CHECK(first.state_lifetime_kwh == Approx(1000.4));
    deliver(ledger, 15, 0.3);
    ledger = restarted(ledger, 19 * 60);
    REQUIRE(ledger.state().candidate_counter.size() == 2);
    const auto adopted = deliver(ledger, 20, 0.6);
    CHECK(adopted.verdict == UploadVerdict::Live);
    CHECK(has_event(adopted, "lifetime_energy_level_adopted"));
    CHECK(adopted.state_lifetime_kwh == Approx(0.6));
    CHECK(adopted.counter_kwh == Approx(0.6));
    // Today goes on: 0.4 before the reset, 0.5 counted from the first reading at the new level.
    CHECK(*adopted.today_kwh == Approx(0.9));
    const auto next = deliver(ledger, 25, 0.7);
    CHECK(next.state_lifetime_kwh == Approx(0.7));
    CHECK(*next.today_kwh == Approx(1.0));
    CHECK_FALSE(has_event(next, "lifetime_energy_went_down"));
}

TEST_CASE("counter: a replaced ECU with a higher counter is adopted without inflating today") {
    EcuLedger ledger(kEcu, {});
    deliver(ledger, 0, 1000.0);
    deliver(ledger, 5, 1000.2);
    CHECK(deliver(ledger, 10, 5400.0).verdict == UploadVerdict::CounterSuspect);
    CHECK(deliver(ledger, 15, 5400.1).verdict == UploadVerdict::CounterSuspect);
    CHECK(ledger.state().live->lifetime_kwh == Approx(1000.2));
    const auto adopted = deliver(ledger, 20, 5400.3);
    CHECK(adopted.verdict == UploadVerdict::Live);
    CHECK(adopted.state_lifetime_kwh == Approx(5400.3));
    CHECK(*adopted.today_kwh == Approx(0.5));
    CHECK(deliver(ledger, 25, 5400.4).verdict == UploadVerdict::Live);
    // Readings of the old ECU re-sent now are far above the new counter's past.
    CHECK(ledger.decide(upload_after(60, 1000.1), host(30 * 60)).verdict ==
          UploadVerdict::CounterSuspect);
}

namespace {

// What the real ECU's counter shows, the highest it ever showed, and the energy of each ECU day.
struct Plant {
    double counter_kwh = 2100.0; // what the real ECU's counter says
    double highest_kwh = 0;
    std::map<LocalDate, double> produced;
    std::map<LocalDate, int> resets;
    std::vector<std::pair<std::int64_t, double>> sent; // real readings: time, counter
};

void check_outputs(const EcuLedger& ledger, const UploadDecision* d, const Plant& plant,
                   const LocalDate& day) {
    const double produced = plant.produced.count(day) ? plant.produced.at(day) : 0.0;
    // The counter's 0.1 kWh steps: at the day's first and last reading, and at each new level.
    const double rounding = 0.1 * (1 + (plant.resets.count(day) ? plant.resets.at(day) : 0)) + 1e-6;
    const auto& s = ledger.state();
    if (s.live)
        CHECK(s.live->lifetime_kwh <= plant.highest_kwh + 1e-6);
    if (const auto today = s.daily.today_kwh(); today && s.daily.day() == day)
        CHECK(*today <= produced + rounding);
    if (!d)
        return;
    CHECK(d->state_lifetime_kwh <= plant.highest_kwh + 1e-6);
    if (d->verdict == UploadVerdict::Live || d->verdict == UploadVerdict::Late)
        CHECK(d->counter_kwh <= plant.highest_kwh + 1e-6);
    if (d->today_kwh && d->ecu_day == day)
        CHECK(*d->today_kwh <= produced + rounding);
}

} // namespace

TEST_CASE("counter: random glitches, resets, a new ECU and forged uploads never show more energy "
          "than the plant made") {
    for (std::uint32_t seed = 1; seed <= 12; ++seed) {
        INFO("seed " << seed);
        std::mt19937 random(seed);
        const auto chance = [&](int per_thousand) {
            return static_cast<int>(random() % 1000) < per_thousand;
        };
        const auto uniform = [&](double low, double high) {
            return std::uniform_real_distribution<double>(low, high)(random);
        };
        EcuLedger ledger(kEcu, {});
        Plant plant;
        int resets = 0;
        int forged = 0;
        int glitches = 0;
        // Host time = ECU time + 17 s of delay; four days of five-minute steps from midnight.
        const std::int64_t start = -12 * 3600;
        for (std::int64_t t = start; t < start + 4 * 86400; t += 300) {
            const LocalDateTime stamp = add_seconds(kNoon, t);
            const LocalDate day = date_of(stamp);
            ledger.tick(host(t + 17));
            const double watts = 4 * 500.0 * solar_fraction(stamp) * uniform(0.5, 1.0);
            const double made = watts * 300 / 3.6e6;
            plant.counter_kwh += made;
            plant.produced[day] += made;
            if (chance(3)) { // the ECU's counter restarts, or another ECU takes over the id
                // (a new counter within what the plant could make is production: not tried)
                const double now = plant.counter_kwh;
                plant.counter_kwh = chance(500) || now < 1001 ? uniform(0, 0.3)
                                    : chance(500)             ? uniform(now + 1000, now + 30000)
                                                              : uniform(0, now - 1000);
                ++plant.resets[day];
                ++resets;
            }
            if (!ecu_uploads_at(stamp, 21, 5)) {
                check_outputs(ledger, nullptr, plant, day);
                continue;
            }
            const double shown = std::floor(plant.counter_kwh * 10) / 10; // 0.1 kWh steps
            plant.highest_kwh = std::max(plant.highest_kwh, shown);
            plant.sent.push_back({t, shown});
            double sent = shown;
            // Until a first reading is kept there is nothing to check a counter against: the
            // glitches and forgeries start after it.
            const bool trusted = ledger.state().live.has_value();
            if (trusted && chance(40)) { // a glitched counter: a spike beyond the plant, or a dip
                sent = chance(500) ? shown + uniform(1000, 1e6) : uniform(0, shown);
                ++glitches;
            }
            auto d = ledger.decide(upload_after(t, sent, watts / 2), host(t + 17));
            ledger.commit(d);
            check_outputs(ledger, &d, plant, day);
            if (trusted &&
                chance(30)) { // a LAN peer forges an upload with a plausible newer timestamp
                const double lifetime = chance(500)   ? 999999.9
                                        : chance(500) ? uniform(shown + 1000, 1e6)
                                                      : uniform(0, shown);
                auto f = ledger.decide(upload_after(t + 60, lifetime), host(t + 30));
                ledger.commit(f);
                check_outputs(ledger, &f, plant, day);
                ++forged;
            }
            if (chance(20)) { // the ECU sends an earlier real reading again
                const auto& [then, counter] = plant.sent[random() % plant.sent.size()];
                auto old = ledger.decide(upload_after(then, counter), host(t + 20));
                ledger.commit(old);
                check_outputs(ledger, &old, plant, day);
            }
            if (chance(10))
                ledger = restarted(ledger, t + 40);
        }
        // A last quiet day: whatever happened, the state shows the real counter again.
        for (std::int64_t t = start + 4 * 86400 + 5 * 3600; t < start + 5 * 86400; t += 300) {
            const LocalDateTime stamp = add_seconds(kNoon, t);
            plant.counter_kwh += 0.01;
            plant.produced[date_of(stamp)] += 0.01;
            const double shown = std::floor(plant.counter_kwh * 10) / 10;
            plant.highest_kwh = std::max(plant.highest_kwh, shown);
            plant.sent.push_back({t, shown});
            auto d = ledger.decide(upload_after(t, shown), host(t + 17));
            ledger.commit(d);
            check_outputs(ledger, &d, plant, date_of(stamp));
        }
        CHECK(ledger.state().live->lifetime_kwh == Approx(std::floor(plant.counter_kwh * 10) / 10));
        CHECK(glitches > 0);
        CHECK(forged > 0);
        CHECK(resets > 0);
    }
}

} // namespace test_counter_model
