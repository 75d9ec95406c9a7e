#include "ecu2mqtt/ledger/ecu_ledger.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <set>

using namespace ecu2mqtt;

namespace test_ecu_ledger {
namespace {

constexpr std::int64_t kHost = 1780000000; // some host UTC second in 2026
const LocalDateTime kNoon{2026, 5, 28, 12, 0, 0};

std::chrono::system_clock::time_point host(std::int64_t plus_s = 0) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(kHost + plus_s));
}

// An upload stamped `minutes` after kNoon by the ECU's clock.
RealtimeUpload upload_at(int minutes, double lifetime_kwh, int inverters = 1, double watts = 200) {
    RealtimeUpload u;
    u.signature = "APS18";
    u.ecu_id = "216000000042";
    u.ecu_model = "ECU-R";
    u.timestamp = add_seconds(kNoon, minutes * 60);
    u.lifetime_energy_kwh = lifetime_kwh;
    for (int i = 0; i < inverters; ++i) {
        InverterReading inv;
        inv.uid = std::to_string(408000100000LL + i);
        inv.model_code = "01";
        inv.model = "YC600";
        inv.power_w = watts;
        inv.channels = {{1, 32, watts / 64, watts / 2, {}}, {2, 32, watts / 64, watts / 2, {}}};
        u.inverters.push_back(inv);
    }
    u.power_w = watts * inverters;
    u.inverters_online = inverters;
    return u;
}

// The ECU's clock reads kNoon at host second kHost: uploads at `minutes` arrive then.
UploadDecision decide_at(const EcuLedger& ledger, const RealtimeUpload& u, int arrive_minutes) {
    return ledger.decide(u, host(arrive_minutes * 60));
}

bool has_event(const std::vector<LedgerEvent>& events, const std::string& name, EventLevel level) {
    return std::any_of(events.begin(), events.end(),
                       [&](const LedgerEvent& e) { return e.name == name && e.level == level; });
}

EcuLedger started_ledger(LedgerConfig config = {}) {
    EcuLedger ledger("216000000042", config);
    ledger.commit(decide_at(ledger, upload_at(0, 100.0), 0));
    return ledger;
}

} // namespace

TEST_CASE("deciding changes nothing, and the first upload is live and teaches the clock") {
    EcuLedger ledger("216000000042", {});
    const auto before = ledger.to_json();
    const auto d = decide_at(ledger, upload_at(0, 100.0, 2), 0);
    CHECK(ledger.to_json() == before);
    CHECK(d.verdict == UploadVerdict::Live);
    CHECK(d.came_online);
    CHECK(d.new_inverters.size() == 2);
    CHECK(d.clock_offset == std::chrono::seconds(to_epoch_seconds(kNoon) - kHost));
    CHECK(d.today_kwh == 0.0);
    ledger.commit(d);
    CHECK(ledger.online());
    CHECK(ledger.state().live->timestamp == kNoon);
    CHECK_FALSE(decide_at(ledger, upload_at(5, 100.1), 5).came_online);
}

TEST_CASE("an ECU clock far from UTC is learned with a warning, a close one quietly") {
    EcuLedger far("216000000042", {});
    // kNoon at host second kHost: the ECU's clock is about eight and a half hours behind UTC.
    CHECK(has_event(decide_at(far, upload_at(0, 1.0), 0).events, "ecu_clock_offset_learned",
                    EventLevel::Warn));
    EcuLedger near("216000000042", {});
    RealtimeUpload utc = upload_at(0, 1.0);
    utc.timestamp = from_epoch_seconds(kHost - 20);
    CHECK(has_event(near.decide(utc, host()).events, "ecu_clock_offset_learned", EventLevel::Info));
}

TEST_CASE(
    "the same reading sent again is a repeat, but a different one with its timestamp is not") {
    auto ledger = started_ledger();
    ledger.commit(decide_at(ledger, upload_at(5, 100.1), 5));

    const auto again = decide_at(ledger, upload_at(5, 100.1), 6); // our answer was missed
    CHECK(again.verdict == UploadVerdict::Repeat);
    ledger.commit(again);
    CHECK(ledger.state().live->timestamp == add_seconds(kNoon, 300));

    const auto other = decide_at(ledger, upload_at(5, 100.0, 1, 150), 7);
    CHECK(other.verdict != UploadVerdict::Repeat);
}

TEST_CASE("after the clock went back an hour, a reading with new content is kept as late") {
    auto ledger = started_ledger();
    for (int m = 5; m <= 60; m += 5)
        ledger.commit(decide_at(ledger, upload_at(m, 100.0 + m / 100.0), m));
    // 12:05 again, an hour later: the same content is a repeat, a higher counter a new reading.
    CHECK(decide_at(ledger, upload_at(5, 100.05), 65).verdict == UploadVerdict::Repeat);
    const auto d = decide_at(ledger, upload_at(5, 100.65), 65);
    CHECK(d.verdict == UploadVerdict::Late);
    ledger.commit(d);
    CHECK(*ledger.state().daily.today_kwh() == Approx(0.65));
    CHECK(ledger.state().live->timestamp == add_seconds(kNoon, 3600));
}

TEST_CASE("after the clock went back a day, a reading with new content is set aside as clock-"
          "suspect") {
    auto ledger = started_ledger();
    for (int m = 5; m <= 60; m += 5)
        ledger.commit(decide_at(ledger, upload_at(m, 100.0 + m / 100.0), m));
    // Stamped a day before 12:10, received at 13:05: no gap asked for it, no zone is that far.
    auto back = upload_at(10, 100.65);
    back.timestamp = add_seconds(back.timestamp, -86400);
    const auto d = decide_at(ledger, back, 65);
    CHECK(d.verdict == UploadVerdict::ClockSuspect);
    CHECK(has_event(d.events, "upload_clock_suspect", EventLevel::Warn));
    ledger.commit(d);
    CHECK(ledger.state().live->timestamp == add_seconds(kNoon, 3600));
    CHECK(*ledger.state().daily.today_kwh() == Approx(0.60));
    CHECK(decide_at(ledger, upload_at(65, 100.66), 65).verdict == UploadVerdict::Live);
}

TEST_CASE("an upload stamped 2099 is answered but moves nothing") {
    auto ledger = started_ledger();
    ledger.commit(decide_at(ledger, upload_at(5, 100.4), 5));
    const auto state_before = ledger.state().live->timestamp;
    const auto today_before = ledger.state().daily.today_kwh();

    RealtimeUpload future = upload_at(10, 250.0);
    future.timestamp = {2099, 1, 1, 0, 0, 0};
    const auto d = decide_at(ledger, future, 10);
    CHECK(d.verdict == UploadVerdict::ClockSuspect);
    CHECK(has_event(d.events, "upload_clock_suspect", EventLevel::Warn));
    CHECK(d.state_lifetime_kwh == Approx(100.4));
    ledger.commit(d);
    CHECK(ledger.state().live->timestamp == state_before);
    CHECK(ledger.state().daily.today_kwh() == today_before);
    CHECK(ledger.state().daily.day() == date_of(kNoon));
    CHECK(ledger.clock_offset() == std::chrono::seconds(to_epoch_seconds(kNoon) - kHost));
    CHECK(decide_at(ledger, upload_at(15, 100.6), 15).verdict == UploadVerdict::Live);
}

TEST_CASE("a late reading never lowers the state's lifetime, and today's energy counts late ones") {
    auto ledger = started_ledger();
    ledger.commit(decide_at(ledger, upload_at(60, 101.0), 60));

    const auto old = decide_at(ledger, upload_at(30, 100.5), 61);
    REQUIRE(old.verdict == UploadVerdict::Late);
    CHECK(old.state_lifetime_kwh == Approx(101.0));
    ledger.commit(old);
    CHECK(ledger.state().live->lifetime_kwh == Approx(101.0));

    // Stamped earlier but counting more: a clock set back. Today's energy includes it at once.
    const auto back = decide_at(ledger, upload_at(35, 101.7), 65);
    REQUIRE(back.verdict == UploadVerdict::Late);
    CHECK(*back.today_kwh == Approx(1.7));
    CHECK(back.state_lifetime_kwh == Approx(101.0));
}

TEST_CASE("a live reading with a lower lifetime keeps the higher one and says so") {
    auto ledger = started_ledger();
    const auto d = decide_at(ledger, upload_at(5, 99.0), 5);
    CHECK(d.verdict == UploadVerdict::Live);
    CHECK(d.state_lifetime_kwh == Approx(100.0));
    CHECK(has_event(d.events, "lifetime_energy_went_down", EventLevel::Warn));
    CHECK(*d.today_kwh == 0.0);
}

TEST_CASE("a reading not kept opens a gap from the last kept one, and it expires with a warning") {
    auto ledger = started_ledger();
    const auto d = decide_at(ledger, upload_at(5, 100.1), 5);
    CHECK_FALSE(d.resend_from);
    CHECK(d.resend_from_if_not_kept == kNoon);
    CHECK(has_event(d.events_if_not_kept, "gap_opened", EventLevel::Warn));
    ledger.not_kept(d);
    CHECK(ledger.resend_from() == kNoon);
    CHECK(ledger.state().live->timestamp == kNoon);

    // Still asked for in every reply while it lasts.
    const auto next = decide_at(ledger, upload_at(10, 100.2), 10);
    CHECK(next.resend_from == kNoon);
    ledger.commit(next);

    CHECK_FALSE(has_event(ledger.tick(host(47 * 3600)).events, "gap_expired", EventLevel::Warn));
    CHECK(ledger.resend_from() == kNoon);
    const auto expired = ledger.tick(host(48 * 3600 + 301));
    CHECK(has_event(expired.events, "gap_expired", EventLevel::Warn));
    CHECK_FALSE(ledger.resend_from());
}

TEST_CASE("several gaps are asked for oldest first and close one by one") {
    auto ledger = started_ledger();
    ledger.not_kept(decide_at(ledger, upload_at(5, 100.1), 5));
    ledger.commit(decide_at(ledger, upload_at(10, 100.2), 10));
    ledger.not_kept(decide_at(ledger, upload_at(15, 100.3), 15));
    ledger.commit(decide_at(ledger, upload_at(20, 100.4), 20));
    REQUIRE(ledger.state().gaps.size() == 2);
    CHECK(ledger.resend_from() == kNoon);

    ledger.commit(decide_at(ledger, upload_at(5, 100.1), 21));
    CHECK(ledger.resend_from() == add_seconds(kNoon, 600));
    const auto last = decide_at(ledger, upload_at(15, 100.3), 22);
    CHECK(last.verdict == UploadVerdict::Late);
    CHECK_FALSE(last.resend_from); // this reply is the normal one again
    ledger.commit(last);
    CHECK(ledger.state().gaps.empty());
}

TEST_CASE("silent for offline_after: offline, and after a restart the timer starts at load") {
    LedgerConfig config;
    config.offline_after = std::chrono::seconds(900);
    auto ledger = started_ledger(config);
    CHECK_FALSE(ledger.tick(host(900)).went_offline);
    const auto t = ledger.tick(host(901));
    CHECK(t.went_offline);
    CHECK(has_event(t.events, "ecu_offline", EventLevel::Warn));
    CHECK_FALSE(ledger.tick(host(2000)).went_offline); // once

    auto live = started_ledger(config);
    const auto loaded = EcuLedger::from_json(live.to_json(), config, host(86400));
    auto restarted = loaded;
    CHECK(restarted.online());
    CHECK_FALSE(restarted.tick(host(86400 + 900)).went_offline);
    CHECK(restarted.tick(host(86400 + 901)).went_offline);
}

TEST_CASE("a 25-inverter upload beyond the cap learns what fits and names the others") {
    LedgerConfig config;
    config.max_inverters = 20;
    EcuLedger ledger("216000000042", config);
    const auto d = decide_at(ledger, upload_at(0, 100.0, 25), 0);
    CHECK(d.new_inverters.size() == 20);
    CHECK(d.refused_inverters.size() == 5);
    CHECK(has_event(d.events, "inverters_refused", EventLevel::Warn));
    ledger.commit(d);
    CHECK(ledger.state().inverters.size() == 20);
    CHECK(ledger.state().inverters.begin()->second.channels == 2);
}

TEST_CASE("an inverter unseen for 30 days is forgotten, the others stay") {
    auto ledger = started_ledger(); // inverter ...100000
    const int day = 24 * 60;
    ledger.commit(decide_at(ledger, upload_at(10 * day, 120.0, 2), 10 * day));
    CHECK(ledger.tick(host(30 * 86400)).forgotten_inverters.empty());
    ledger.commit(decide_at(ledger, upload_at(30 * day + 5, 150.0, 0), 30 * day + 5));
    CHECK(ledger.tick(host(30 * 86400 + 600)).forgotten_inverters.empty());
    const auto night = decide_at(ledger, upload_at(30 * day + 10, 150.0, 1), 30 * day + 10);
    CHECK(night.absent_inverters == std::vector<std::string>{"408000100001"});
    // ...100001 was last seen on day 10, ...100000 too: both go after day 40.
    const auto t = ledger.tick(host(40 * 86400 + 60));
    CHECK(t.forgotten_inverters.size() == 2);
    CHECK(ledger.state().inverters.empty());
}

TEST_CASE("a tick between deciding and committing is not undone by the commit") {
    auto ledger = started_ledger();
    const auto d = decide_at(ledger, upload_at(24 * 60 + 5, 101.0), 24 * 60 + 5);
    ledger.tick(host(24 * 3600)); // the ECU's midnight, while the store was writing
    REQUIRE(ledger.state().daily.day() == LocalDate{2026, 5, 29});
    ledger.commit(d);
    CHECK(ledger.state().daily.day() == LocalDate{2026, 5, 29});
    CHECK(*ledger.state().daily.today_kwh() == Approx(1.0));
    CHECK(ledger.state().live->timestamp == add_seconds(kNoon, (24 * 60 + 5) * 60));
}

TEST_CASE("two uploads decided before either is committed are both kept, in order") {
    auto ledger = started_ledger();
    const auto first = decide_at(ledger, upload_at(5, 100.1), 5);
    const auto second = decide_at(ledger, upload_at(10, 100.3), 10);
    ledger.commit(first);
    ledger.commit(second);
    CHECK(ledger.state().live->timestamp == add_seconds(kNoon, 600));
    CHECK(ledger.state().kept.size() == 3);
    CHECK(*ledger.state().daily.today_kwh() == Approx(0.3));
}

TEST_CASE("what is saved comes back the same") {
    auto ledger = started_ledger();
    ledger.not_kept(decide_at(ledger, upload_at(5, 100.1, 2), 5));
    ledger.commit(decide_at(ledger, upload_at(10, 100.2, 2), 10));
    const auto saved = nlohmann::json::parse(ledger.to_json().dump());
    const auto loaded = EcuLedger::from_json(saved, {}, host(700));
    CHECK(loaded.to_json() == saved);
    CHECK(loaded.resend_from() == kNoon);
    CHECK(loaded.clock_offset() == ledger.clock_offset());
    CHECK(loaded.state().inverters.size() == 2);
}

TEST_CASE("random deliveries keep the ledger's promises") {
    std::mt19937 random(20261125);
    for (int round = 0; round < 20; ++round) {
        EcuLedger ledger("216000000042", {});
        double lifetime = 100.0;
        double shown = 0;
        std::vector<RealtimeUpload> made;
        std::set<LocalDateTime> kept;
        for (int step = 0; step < 300; ++step) {
            lifetime += (random() % 5) * 0.1;
            made.push_back(upload_at(step * 5, lifetime, 1 + static_cast<int>(random() % 3)));
            // Mostly the newest, sometimes an old one again, sometimes one lost.
            const auto pick = random() % 10;
            const RealtimeUpload& u = pick == 0 ? made[random() % made.size()] : made.back();
            const auto d = ledger.decide(u, host(step * 300 + static_cast<int>(random() % 60)));
            if (pick == 1) {
                ledger.not_kept(d);
            } else {
                ledger.commit(d);
                if (d.verdict == UploadVerdict::Live || d.verdict == UploadVerdict::Late)
                    CHECK(kept.insert(u.timestamp).second); // never kept twice
                else
                    CHECK(kept.contains(u.timestamp)); // a repeat of what was kept
            }
            if (ledger.state().live) {
                CHECK(ledger.state().live->lifetime_kwh >= shown);
                shown = ledger.state().live->lifetime_kwh;
            }
            if (const auto today = ledger.state().daily.today_kwh())
                CHECK(*today >= 0.0);
            CHECK(ledger.resend_from().has_value() == !ledger.state().gaps.empty());
            ledger.tick(host(step * 300 + 120));
        }
    }
}

} // namespace test_ecu_ledger
