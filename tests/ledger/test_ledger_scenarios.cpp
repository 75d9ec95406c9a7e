// The ledger over simulated days and weeks with ECU clocks as they are in the field.
#include "support/ledger_run.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using test::at;
using test::EcuSimulator;
using test::LedgerRun;
using test::utc_seconds;

namespace test_ledger_scenarios {
namespace {

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 24 * kHour;

std::int64_t offset_of(const EcuLedger& ledger) {
    REQUIRE(ledger.clock_offset());
    return ledger.clock_offset()->count();
}

} // namespace

TEST_CASE("the simulated zones switch on the published dates") {
    const auto la = test::los_angeles();
    CHECK(la(utc_seconds({2026, 3, 8, 9, 59, 59})) == -8 * kHour);
    CHECK(la(utc_seconds({2026, 3, 8, 10, 0, 0})) == -7 * kHour);
    CHECK(la(utc_seconds({2026, 11, 1, 8, 59, 59})) == -7 * kHour);
    CHECK(la(utc_seconds({2026, 11, 1, 9, 0, 0})) == -8 * kHour);
    const auto berlin = test::berlin();
    CHECK(berlin(utc_seconds({2026, 3, 29, 0, 59, 59})) == kHour);
    CHECK(berlin(utc_seconds({2026, 3, 29, 1, 0, 0})) == 2 * kHour);
    CHECK(berlin(utc_seconds({2026, 10, 25, 0, 59, 59})) == 2 * kHour);
    CHECK(berlin(utc_seconds({2026, 10, 25, 1, 0, 0})) == kHour);
    CHECK(berlin(utc_seconds({2027, 3, 28, 1, 0, 0})) == 2 * kHour);
}

TEST_CASE("ECU in Los Angeles, host in UTC: a week across the spring DST switch") {
    EcuSimulator sim("216000000001", test::los_angeles(), 4, 300);
    const auto start = utc_seconds({2026, 3, 5, 8, 0, 0}); // midnight in Los Angeles
    LedgerRun run(sim, start);
    run.clock_changes = true; // the ECU's clock moves forward an hour on 8 March

    // The host's midnight is 16:00 in California: the afternoon still belongs to the ECU's day.
    run.run_until(utc_seconds({2026, 3, 6, 0, 5, 0}));
    CHECK(run.ledger().state().daily.day() == LocalDate{2026, 3, 5});
    CHECK(*run.ledger().state().daily.today_kwh() > 1.0);
    CHECK(offset_of(run.ledger()) == -8 * kHour - LedgerRun::kDelayS);

    run.run_until(start + 7 * kDay);
    CHECK(offset_of(run.ledger()) == -7 * kHour - LedgerRun::kDelayS);
    CHECK(run.resets().size() == 8); // 5 to 12 March: once per ECU day, at its own midnight
    CHECK(run.verdicts(UploadVerdict::ClockSuspect) == 0);
    CHECK(run.verdicts(UploadVerdict::Repeat) == 0);
    CHECK(run.verdicts(UploadVerdict::Late) == 0);
    run.check_none_lost();
}

TEST_CASE("ECU in Los Angeles uploading through the night: the autumn switch repeats an hour") {
    EcuSimulator sim("216000000002", test::los_angeles(), 2, 300);
    sim.set_uploads_at_night(true);
    const auto start = utc_seconds({2026, 10, 30, 7, 0, 0});
    LedgerRun run(sim, start);
    run.clock_changes = true;

    run.run_until(start + 4 * kDay);
    // 01:00 to 01:55 came twice with the same night-time content: nothing new to keep. From
    // 02:00 on, the readings are newer again; the third of them settles the new offset.
    CHECK(run.verdicts(UploadVerdict::Repeat) == 12);
    CHECK(run.verdicts(UploadVerdict::ClockSuspect) == 0);
    CHECK(run.verdicts(UploadVerdict::Late) == 0);
    CHECK(offset_of(run.ledger()) == -8 * kHour - LedgerRun::kDelayS);
    CHECK(run.resets().size() == 4);
    run.check_none_lost();
}

TEST_CASE("ECU in Berlin uploading through the night: the spring switch skips an hour") {
    EcuSimulator sim("216000000011", test::berlin(), 2, 300);
    sim.set_uploads_at_night(true);
    const auto start = utc_seconds({2026, 3, 27, 23, 0, 0});
    LedgerRun run(sim, start);
    run.clock_changes = true;

    run.run_until(start + 4 * kDay);
    // 01:55 is followed by 03:00: newer, so live, and no gap is asked for the missing hour.
    CHECK(run.verdicts(UploadVerdict::ClockSuspect) == 0);
    CHECK(run.verdicts(UploadVerdict::Late) == 0);
    CHECK(run.verdicts(UploadVerdict::Repeat) == 0);
    CHECK_FALSE(run.ledger().resend_from());
    CHECK(offset_of(run.ledger()) == 2 * kHour - LedgerRun::kDelayS);
    CHECK(run.resets().size() == 5);
    run.check_none_lost();
}

TEST_CASE("ECU in Shanghai, host in Berlin: the host's own DST switch changes nothing") {
    EcuSimulator sim("216000000003", test::shanghai(), 3, 250);
    const auto start = utc_seconds({2026, 10, 20, 16, 0, 0}); // midnight in Shanghai
    LedgerRun run(sim, start);

    std::vector<int> berlin_reset_hours;
    const auto berlin = test::berlin();
    for (std::int64_t t = start; t < start + 14 * kDay; t += kDay) {
        const auto resets_before = run.resets().size();
        run.run_until(t + kDay + LedgerRun::kPeriodS);
        if (run.resets().size() > resets_before) {
            const auto reset_at = t + kDay; // the step that rolled: Shanghai's midnight
            berlin_reset_hours.push_back(from_epoch_seconds(reset_at + berlin(reset_at)).hour);
        }
    }
    // Shanghai's midnight is 18:00 in Berlin in summer time and 17:00 after 25 October.
    REQUIRE(berlin_reset_hours.size() == 14);
    CHECK(berlin_reset_hours.front() == 18);
    CHECK(berlin_reset_hours.back() == 17);
    CHECK(offset_of(run.ledger()) == 8 * kHour - LedgerRun::kDelayS);
    CHECK(run.verdicts(UploadVerdict::Late) == 0);
    run.check_none_lost();
}

TEST_CASE("an RTC that jumps to 2099, then to 2000, and back freezes nothing") {
    EcuSimulator sim("216000000004", test::berlin(), 2, 300);
    const auto start = utc_seconds({2026, 6, 1, 22, 0, 0});
    LedgerRun run(sim, start);
    run.run_until(utc_seconds({2026, 6, 2, 10, 0, 0}));
    const auto live_before = run.ledger().state().live->timestamp;
    const auto offset_before = offset_of(run.ledger());

    // Ten uploads in a row agree on 2099: a broken clock is never adopted, however steady.
    sim.set_glitch(LocalDateTime{2099, 12, 31, 23, 0, 0});
    run.run_until(utc_seconds({2026, 6, 2, 10, 50, 0}));
    CHECK(run.verdicts(UploadVerdict::ClockSuspect) == 10);
    CHECK(run.ledger().state().live->timestamp == live_before);
    CHECK(run.ledger().state().daily.day() == LocalDate{2026, 6, 2});
    CHECK(offset_of(run.ledger()) == offset_before);

    // Then a reset RTC: two uploads from 2000, too old for any gap. Nothing asks for 1999.
    sim.set_glitch(LocalDateTime{2000, 1, 1, 0, 0, 0});
    run.run_until(utc_seconds({2026, 6, 2, 11, 0, 0}));
    CHECK(run.verdicts(UploadVerdict::ClockSuspect) == 12);
    CHECK(run.ledger().state().gaps.empty());
    CHECK(run.ledger().state().live->timestamp == live_before);

    sim.set_glitch(std::nullopt);
    run.run_until(utc_seconds({2026, 6, 4, 22, 0, 0}));
    CHECK(run.ledger().state().live->timestamp > live_before);
    CHECK(run.ledger().state().live->timestamp.year == 2026);
    CHECK(run.resets().size() == 3);
    run.check_none_lost();
}

TEST_CASE("an ECU clock corrected from UTC+8 to UTC+1 mid-day goes on without a loss") {
    EcuSimulator sim("216000000005", test::fixed_zone(kHour), 3, 300);
    sim.set_clock_shift(7 * kHour); // installed with China's zone, in Central Europe
    const auto start = utc_seconds({2026, 1, 10, 16, 0, 0});
    LedgerRun run(sim, start);
    run.clock_changes = true;
    run.run_until(utc_seconds({2026, 1, 12, 10, 0, 0}));
    CHECK(offset_of(run.ledger()) == 8 * kHour - LedgerRun::kDelayS);

    sim.set_clock_shift(0); // 18:00 on the ECU becomes 11:00
    run.run_until(utc_seconds({2026, 1, 15, 10, 0, 0}));
    CHECK(offset_of(run.ledger()) == kHour - LedgerRun::kDelayS);
    CHECK(run.verdicts(UploadVerdict::ClockSuspect) == 0);
    CHECK(run.verdicts(UploadVerdict::Repeat) == 0);
    CHECK(run.verdicts(UploadVerdict::Late) == 2);
    run.check_none_lost();
}

TEST_CASE("an ECU clock corrected forward (UTC+1 to UTC+8) is adopted after three uploads") {
    EcuSimulator sim("216000000006", test::fixed_zone(8 * kHour), 3, 300);
    sim.set_clock_shift(-7 * kHour);
    const auto start = utc_seconds({2026, 1, 10, 16, 0, 0});
    LedgerRun run(sim, start);
    run.clock_changes = true;
    run.run_until(utc_seconds({2026, 1, 12, 3, 0, 0}));

    sim.set_clock_shift(0); // 20:00 on the ECU becomes 11:00 the same day... seven hours on
    run.run_until(utc_seconds({2026, 1, 14, 3, 0, 0}));
    CHECK(offset_of(run.ledger()) == 8 * kHour - LedgerRun::kDelayS);
    // Two uploads ahead of the known clock are suspect; the third agrees with them and is live.
    CHECK(run.verdicts(UploadVerdict::ClockSuspect) == 2);
    std::size_t lost = 0;
    for (std::size_t i = 0; i < sim.readings().size(); ++i)
        lost += run.kept().count(i) == 0 ? 1 : 0;
    CHECK(lost == 2);
}

TEST_CASE("an hour of failed writes, then partial and full re-sends, closes the gap exactly") {
    EcuSimulator sim("216000000007", test::berlin(), 4, 300);
    const auto start = utc_seconds({2026, 6, 1, 22, 0, 0});
    LedgerRun run(sim, start);
    run.run_until(utc_seconds({2026, 6, 2, 7, 55, 0})); // 09:55 in Berlin: the last one kept

    run.keep = [](std::int64_t received_s) {
        return !(received_s >= utc_seconds({2026, 6, 2, 8, 0, 0}) &&
                 received_s < utc_seconds({2026, 6, 2, 9, 0, 0}));
    };
    run.resend_limit = 0; // the ECU does not answer the request at first
    run.run_until(utc_seconds({2026, 6, 2, 9, 0, 0}));
    REQUIRE(run.ledger().resend_from() == LocalDateTime{2026, 6, 2, 9, 55, 0});
    REQUIRE(run.ledger().state().gaps.size() == 1);
    CHECK(run.ledger().state().gaps.front().missing.size() == 12);
    // 11:00 was kept: the hole has an end.
    CHECK(run.ledger().state().gaps.front().before == LocalDateTime{2026, 6, 2, 11, 0, 0});

    run.resend_limit = 4;
    run.run_until(utc_seconds({2026, 6, 2, 9, 5, 0}));
    CHECK(run.ledger().resend_from() == LocalDateTime{2026, 6, 2, 10, 15, 0});
    CHECK(run.ledger().state().gaps.front().missing.size() == 8);

    run.resend_limit = 0;
    run.run_until(utc_seconds({2026, 6, 2, 9, 30, 0}));
    CHECK(run.ledger().resend_from() == LocalDateTime{2026, 6, 2, 10, 15, 0});

    const auto offset_before = offset_of(run.ledger());
    run.resend_limit = std::numeric_limits<std::size_t>::max();
    run.run_until(utc_seconds({2026, 6, 2, 9, 35, 0}));
    CHECK_FALSE(run.ledger().resend_from());
    CHECK(run.ledger().state().gaps.empty());
    // Re-sent readings are old on purpose: they say nothing about the ECU's clock.
    CHECK(offset_of(run.ledger()) == offset_before);
    CHECK(run.ledger().state().candidate_offset.empty());
    CHECK(run.verdicts(UploadVerdict::Late) == 12); // each lost reading, once
    CHECK(run.verdicts(UploadVerdict::Repeat) > 0); // the ECU re-sent past the hole too
    run.run_until(utc_seconds({2026, 6, 3, 22, 0, 0}));
    run.check_none_lost();
}

TEST_CASE("a restart in the middle of a gap keeps asking from where it stopped") {
    EcuSimulator sim("216000000008", test::berlin(), 2, 300);
    const auto start = utc_seconds({2026, 6, 1, 22, 0, 0});
    LedgerRun run(sim, start);
    run.run_until(utc_seconds({2026, 6, 2, 7, 55, 0}));
    run.keep = [](std::int64_t received_s) {
        return !(received_s >= utc_seconds({2026, 6, 2, 8, 0, 0}) &&
                 received_s < utc_seconds({2026, 6, 2, 9, 0, 0}));
    };
    run.resend_limit = 0;
    run.run_until(utc_seconds({2026, 6, 2, 9, 0, 0}));
    run.resend_limit = 5;
    run.run_until(utc_seconds({2026, 6, 2, 9, 5, 0}));
    const auto asked = run.ledger().resend_from();
    REQUIRE(asked == LocalDateTime{2026, 6, 2, 10, 20, 0});

    run.restart();
    CHECK(run.ledger().resend_from() == asked);
    CHECK(run.ledger().online());
    // Silent since the restart: offline when the timer, started at load, runs out.
    const auto loaded = run.now();
    CHECK_FALSE(run.ledger().tick(at(loaded + 899)).went_offline);
    CHECK(run.ledger().tick(at(loaded + 901)).went_offline);

    run.resend_limit = std::numeric_limits<std::size_t>::max();
    run.run_until(utc_seconds({2026, 6, 2, 9, 45, 0}));
    CHECK_FALSE(run.ledger().resend_from());
    run.run_until(utc_seconds({2026, 6, 2, 22, 0, 0}));
    run.check_none_lost();
}

TEST_CASE("a 25-inverter ECU over a week: every inverter learned once, energy right") {
    EcuSimulator sim("216000000009", test::berlin(), 25, 350);
    const auto start = utc_seconds({2026, 6, 1, 22, 0, 0});
    LedgerRun run(sim, start);
    run.run_until(start + 7 * kDay);
    CHECK(run.ledger().state().inverters.size() == 25);
    CHECK(run.resets().size() == 7);
    run.check_none_lost();
}

TEST_CASE("readings lost after the clock went back are still asked for and come back") {
    EcuSimulator sim("216000000010", test::fixed_zone(kHour), 2, 300);
    sim.set_clock_shift(7 * kHour);
    const auto start = utc_seconds({2026, 1, 10, 16, 0, 0});
    LedgerRun run(sim, start);
    run.clock_changes = true;
    run.run_until(utc_seconds({2026, 1, 12, 10, 0, 0}));
    sim.set_clock_shift(0); // the kept 18:00 readings now lie "after" the new 11:00 ones
    run.keep = [](std::int64_t received_s) {
        return !(received_s >= utc_seconds({2026, 1, 12, 12, 0, 0}) &&
                 received_s < utc_seconds({2026, 1, 12, 12, 30, 0}));
    };
    run.run_until(utc_seconds({2026, 1, 12, 12, 25, 0}));
    CHECK(run.ledger().resend_from() == LocalDateTime{2026, 1, 12, 12, 55, 0});
    REQUIRE(run.ledger().state().gaps.size() == 1);
    CHECK(run.ledger().state().gaps.front().missing.size() == 6);
    run.run_until(utc_seconds({2026, 1, 13, 10, 0, 0}));
    CHECK_FALSE(run.ledger().resend_from());
    run.check_none_lost();
}

} // namespace test_ledger_scenarios
