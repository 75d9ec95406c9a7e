// Readings lost while the store failed, and the ECU sending them again: the gap closes and the
// clock model is not taught by what was not kept.
#include "ecu2mqtt/ledger/ecu_ledger.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

using namespace ecu2mqtt;

namespace test_ledger_resends {
namespace {

constexpr std::int64_t kHost = 1780000000;         // some host UTC second in 2026
const LocalDateTime kFirst{2026, 5, 28, 6, 21, 0}; // the last reading kept before the disk filled
const std::int64_t kOffset = to_epoch_seconds(kFirst) - kHost; // ECU minus host

std::chrono::system_clock::time_point host(std::int64_t plus_s) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(kHost + plus_s));
}

// The reading the ECU takes `step` five-minute periods after kFirst, 25 QS1 at 300 W.
RealtimeUpload reading(int step) {
    RealtimeUpload u;
    u.signature = "APS18";
    u.ecu_id = "216000000042";
    u.ecu_model = "ECU-R";
    u.timestamp = add_seconds(kFirst, step * 300);
    u.lifetime_energy_kwh = 1000.0 + step * 0.1;
    for (int i = 0; i < 25; ++i) {
        InverterReading inv;
        inv.uid = std::to_string(801000000000LL + i);
        inv.model_code = "03";
        inv.model = "QS1";
        inv.power_w = 300;
        for (int c = 1; c <= 4; ++c)
            inv.channels.push_back({c, 32, 75.0 / 32, 75, {}});
        u.inverters.push_back(inv);
    }
    u.power_w = 25 * 300;
    u.inverters_online = 25;
    return u;
}

// Steps 0 and before kept on time: the clock model has learned kOffset.
EcuLedger ledger_kept_up_to_first() {
    EcuLedger ledger("216000000042", {});
    for (int step = -3; step <= 0; ++step)
        ledger.commit(ledger.decide(reading(step), host(step * 300)));
    REQUIRE(ledger.clock_offset() == std::chrono::seconds(kOffset));
    return ledger;
}

std::set<LocalDateTime> stamps(int from, int to) {
    std::set<LocalDateTime> out;
    for (int step = from; step <= to; ++step)
        out.insert(reading(step).timestamp);
    return out;
}

// {"after":"…062100","before":"…062600","missing":["…062600",…,"…064600"]}
nlohmann::json json_gap_as_saved() {
    auto missing = nlohmann::json::array();
    for (int step = 1; step <= 5; ++step)
        missing.push_back(format_compact(reading(step).timestamp));
    return nlohmann::json::array({{{"after", format_compact(kFirst)},
                                   {"before", format_compact(reading(1).timestamp)},
                                   {"missing", missing},
                                   {"opened_at_s", kHost}}});
}

} // namespace

TEST_CASE("a lost reading that comes back live, newer than the last kept one, advances its gap") {
    auto ledger = ledger_kept_up_to_first();
    for (int step = 1; step <= 5; ++step) // 06:26 … 06:46 not kept: the disk is full
        ledger.not_kept(ledger.decide(reading(step), host(step * 300)));
    REQUIRE(ledger.state().gaps.size() == 1);
    CHECK(ledger.resend_from() == kFirst);

    // The space is back after the reply to 06:46 and before its re-sends, oldest first.
    const auto first = ledger.decide(reading(1), host(5 * 300 + 10));
    CHECK(first.verdict == UploadVerdict::Live); // newer than 06:21, the last kept live reading
    ledger.commit(first);
    REQUIRE(ledger.state().gaps.size() == 1);
    const LedgerGap& gap = ledger.state().gaps.front();
    CHECK(gap.after == reading(1).timestamp);
    CHECK_FALSE(gap.before);
    CHECK(gap.missing == stamps(2, 5));
    CHECK(ledger.resend_from() == reading(1).timestamp); // the ECU goes on from 06:26

    for (int step = 2; step <= 5; ++step) {
        const auto again = ledger.decide(reading(step), host(5 * 300 + 10 + step));
        CHECK(again.verdict == UploadVerdict::Live);
        ledger.commit(again);
    }
    CHECK(ledger.state().gaps.empty());
    CHECK_FALSE(ledger.resend_from());
    CHECK(ledger.state().live->timestamp == reading(5).timestamp);
    const auto next = ledger.decide(reading(6), host(6 * 300));
    CHECK(next.verdict == UploadVerdict::Live);
    CHECK_FALSE(next.resend_from);
}

TEST_CASE("a live reading past every lost one ends the hole; the lost ones then close it late") {
    auto ledger = ledger_kept_up_to_first();
    for (int step = 1; step <= 3; ++step)
        ledger.not_kept(ledger.decide(reading(step), host(step * 300)));
    ledger.commit(ledger.decide(reading(4), host(4 * 300))); // the space is back
    REQUIRE(ledger.state().gaps.size() == 1);
    CHECK(ledger.state().gaps.front().before == reading(4).timestamp);
    CHECK(ledger.state().gaps.front().missing == stamps(1, 3));
    for (int step = 1; step <= 3; ++step) {
        const auto late = ledger.decide(reading(step), host(4 * 300 + step));
        CHECK(late.verdict == UploadVerdict::Late);
        ledger.commit(late);
    }
    CHECK(ledger.state().gaps.empty());
}

TEST_CASE("identical re-sends of readings not kept during a 2.5 h outage do not move the clock") {
    auto ledger = ledger_kept_up_to_first();
    // Every five minutes the ECU uploads its new reading; each reply asks for a re-send from
    // 06:21, and the ECU sends 06:26 again, three times, before the next period. Nothing is kept.
    const int periods = 30;
    for (int step = 1; step <= periods; ++step) {
        const auto at = step * 300;
        const auto current = ledger.decide(reading(step), host(at));
        CHECK(current.verdict == UploadVerdict::Live);
        ledger.not_kept(current);
        CHECK(ledger.resend_from() == kFirst);
        for (int again = 1; again <= 3; ++again) {
            const auto resend = ledger.decide(reading(1), host(at + again));
            CHECK(resend.verdict != UploadVerdict::ClockSuspect);
            CHECK_FALSE(
                std::any_of(resend.events.begin(), resend.events.end(), [](const LedgerEvent& e) {
                    return e.name == "ecu_clock_offset_changed";
                }));
            ledger.not_kept(resend);
        }
        CHECK(ledger.clock_offset() == std::chrono::seconds(kOffset));
    }
    CHECK(ledger.state().candidate_offset.empty());

    // The space is back: the live uploads are live, and every lost reading is asked for and kept.
    const auto back = (periods + 1) * 300;
    const auto live = ledger.decide(reading(periods + 1), host(back));
    CHECK(live.verdict == UploadVerdict::Live);
    ledger.commit(live);
    int resends = 0;
    while (const auto from = ledger.resend_from()) {
        REQUIRE(++resends <= periods);
        int step = 1;
        while (reading(step).timestamp <= *from)
            ++step;
        const auto d = ledger.decide(reading(step), host(back + resends));
        CHECK(d.verdict == UploadVerdict::Late);
        ledger.commit(d);
    }
    CHECK(resends == periods);
    CHECK(ledger.clock_offset() == std::chrono::seconds(kOffset));
    const auto after = ledger.decide(reading(periods + 2), host(back + 300));
    CHECK(after.verdict == UploadVerdict::Live);
}

TEST_CASE("a reading not kept teaches the clock nothing, not even as the first one") {
    EcuLedger ledger("216000000042", {});
    const auto d = ledger.decide(reading(0), host(0));
    CHECK(d.clock_offset == std::chrono::seconds(kOffset)); // what it would teach if kept
    ledger.not_kept(d);
    CHECK_FALSE(ledger.clock_offset());
    ledger.commit(ledger.decide(reading(1), host(300 + 40)));
    CHECK(ledger.clock_offset() == std::chrono::seconds(kOffset - 40));
}

TEST_CASE("one upload stamped hours ahead, sent three times, stays clock-suspect") {
    auto ledger = ledger_kept_up_to_first();
    auto ahead = reading(1);
    ahead.timestamp = add_seconds(ahead.timestamp, 3 * 3600);
    for (int again = 0; again < 3; ++again) {
        const auto d = ledger.decide(ahead, host(300 + again));
        CHECK(d.verdict == UploadVerdict::ClockSuspect);
        ledger.commit(d); // its raw bytes were kept
    }
    CHECK(ledger.clock_offset() == std::chrono::seconds(kOffset));
    CHECK(ledger.state().candidate_offset.size() == 1);
    const auto saved = EcuLedger::from_json(ledger.to_json(), {}, host(1000));
    CHECK(saved.state().candidate_readings == ledger.state().candidate_readings);

    // Three different readings agreeing on the new clock are adopted, as before.
    for (int step = 2; step <= 3; ++step) {
        auto next = reading(step);
        next.timestamp = add_seconds(next.timestamp, 3 * 3600);
        ledger.commit(ledger.decide(next, host(step * 300)));
    }
    CHECK(ledger.clock_offset() == std::chrono::seconds(kOffset + 3 * 3600));
}

TEST_CASE("re-sends lost again stay asked for when a later re-send is kept") {
    auto ledger = ledger_kept_up_to_first();
    for (int step = 1; step <= 5; ++step)
        ledger.not_kept(ledger.decide(reading(step), host(step * 300)));
    // Re-sending 06:26 … 06:46: the first two are lost again, then the space is back.
    ledger.not_kept(ledger.decide(reading(1), host(1510)));
    ledger.not_kept(ledger.decide(reading(2), host(1511)));
    for (int step = 3; step <= 5; ++step)
        ledger.commit(ledger.decide(reading(step), host(1510 + step)));
    REQUIRE(ledger.state().gaps.size() == 1);
    const LedgerGap& gap = ledger.state().gaps.front();
    CHECK(gap.after == kFirst);
    CHECK(gap.before == reading(3).timestamp);
    CHECK(gap.missing == stamps(1, 2));
    CHECK(ledger.resend_from() == kFirst);
    const auto saved = EcuLedger::from_json(ledger.to_json(), {}, host(1600));
    CHECK(saved.state().gaps.front().lost_again == stamps(1, 2));

    for (int step = 1; step <= 2; ++step) {
        const auto late = ledger.decide(reading(step), host(1600 + step));
        CHECK(late.verdict == UploadVerdict::Late);
        ledger.commit(late);
    }
    CHECK(ledger.state().gaps.empty());
}

TEST_CASE("a gap saved with its end before readings it names as missing is mended at load") {
    // As an older version saved it once the first re-send had come back live: every reply asked
    // from 06:21 until the gap expired.
    auto ledger = ledger_kept_up_to_first();
    auto j = ledger.to_json();
    for (const int step : {1, 2, 4, 5})
        j["kept"].push_back({format_compact(reading(step).timestamp), "1"});
    j["gaps"] = json_gap_as_saved();
    const auto mended = EcuLedger::from_json(j, {}, host(2000));
    REQUIRE(mended.state().gaps.size() == 1); // 06:36 was not kept
    const LedgerGap& gap = mended.state().gaps.front();
    CHECK(gap.after == reading(2).timestamp);
    CHECK(gap.missing == stamps(3, 3));
    CHECK(gap.before == reading(4).timestamp);

    j["kept"].push_back({format_compact(reading(3).timestamp), "1"});
    CHECK(EcuLedger::from_json(j, {}, host(2000)).state().gaps.empty());
}

} // namespace test_ledger_resends
