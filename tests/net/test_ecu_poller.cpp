#include "ecu2mqtt/net/ecu_poller.hpp"
#include "support/poller_rig.hpp"

#include <catch2/catch.hpp>
#include <sstream>

using namespace ecu2mqtt;
namespace asio = boost::asio;

namespace test_ecu_poller {
namespace {

using test::PollerRig;
using test::run_until;

bool only_the_three_requests(const std::vector<std::string>& requests) {
    for (const auto& r : requests)
        if (r != "APS1100160001END\n" && r != "APS1100280002216000000001END\n" &&
            r != "APS1100280030216000000001END\n")
            return false;
    return !requests.empty();
}

} // namespace

TEST_CASE("a poll asks the three questions and hands on what the ECU said", "[poller]") {
    PollerRig rig;
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    CHECK(rig.polled_ids.front() == "216000000001");
    const auto& facts = rig.polled.front();
    CHECK(facts.firmware == "ECU_R_1.3.6C");
    CHECK(facts.time_zone == "Etc/GMT-8");
    CHECK(facts.inverters_registered == 6);
    CHECK(facts.inverters.size() == 6);
    CHECK(facts.inverters.at("901000000001").signal_level == 170);
    CHECK(rig.zones.front() == "Etc/GMT-8");
    CHECK(only_the_three_requests(rig.ecu.requests()));
    CHECK(rig.count("poll_failed") == 0);
    const auto status = rig.poller->status();
    REQUIRE(status.size() == 1);
    CHECK(status.front().last_success_unix > 0);
    CHECK_FALSE(status.front().failing_since_unix);
}

TEST_CASE("a reply without END is read to the ECU's close and decoded", "[poller]") {
    PollerRig rig;
    rig.ecu.set_behaviour(test::LocalApiBehaviour::NoEnd);
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    CHECK(rig.polled.front().inverters.size() == 6);
    CHECK(rig.count("poll_failed") == 0);
}

TEST_CASE("each misbehaviour: a logged failure, backoff, and recovery", "[poller]") {
    using test::LocalApiBehaviour;
    const auto misbehave = GENERATE(as<std::string>{}, "refuse", "silent", "truncate", "wedge");
    INFO(misbehave);
    PollerRig rig;
    if (misbehave == "refuse")
        rig.ecu.refuse();
    else if (misbehave == "silent")
        rig.ecu.set_behaviour(LocalApiBehaviour::Silent);
    else if (misbehave == "truncate")
        rig.ecu.set_behaviour(LocalApiBehaviour::Truncate);
    else
        rig.ecu.wedge_after(1);
    rig.poller->start();
    // Three failures in a row, each waiting twice as long as the one before (up to the cap).
    REQUIRE(run_until(rig.io, [&] { return rig.failures() >= 3; }));
    CHECK(rig.count("poll_failed") >= 3);
    CHECK(rig.count("next_in_ms=150") >= 1);
    CHECK(rig.count("next_in_ms=300") >= 1);
    CHECK(rig.count("next_in_ms=600") >= 1);
    const auto status = rig.poller->status().front();
    CHECK(status.failing_since_unix);
    CHECK_FALSE(status.last_failure.empty());
    if (misbehave == "truncate")
        CHECK(rig.count("raw") >= 1); // the bytes that did not decode are in the log
    const auto answered_before = rig.polled.size();
    // The ECU answers again (power-cycled): the next poll recovers.
    test::LocalApiServer* ecu = &rig.ecu;
    if (misbehave == "refuse")
        ecu->answer_again();
    ecu->set_behaviour(LocalApiBehaviour::Answer);
    ecu->wedge_after(-1);
    REQUIRE(run_until(rig.io,
                      [&] { return rig.failures() == 0 && rig.polled.size() > answered_before; }));
    CHECK(rig.count("poll_recovered") == 1);
    CHECK_FALSE(rig.poller->status().front().failing_since_unix);
    CHECK((rig.ecu.requests().empty() || only_the_three_requests(rig.ecu.requests())));
}

TEST_CASE("no poll while the ECU is in an upload exchange", "[poller]") {
    PollerRig rig;
    rig.uploading = true;
    rig.poller->start();
    run_until(
        rig.io, [] { return false; }, std::chrono::milliseconds(400));
    CHECK(rig.ecu.requests().empty());
    rig.uploading = false;
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
}

TEST_CASE("auto finds the ECU at the address of its uploads", "[poller]") {
    PollerRig rig(true);
    rig.poller->start();
    run_until(
        rig.io, [] { return false; }, std::chrono::milliseconds(200));
    CHECK(rig.ecu.requests().empty()); // nothing known yet
    // The simulated ECU listens on an ephemeral port, not 8899: auto polls port 8899 at the
    // upload's address, so this checks the address it found and that it tries there.
    rig.poller->on_upload("216000000001", "127.0.0.1:40123");
    const auto status = rig.poller->status();
    REQUIRE(status.size() == 1);
    CHECK(status.front().address == "127.0.0.1");
    CHECK(status.front().ecu_id == "216000000001");
    rig.poller->on_upload("216000000001", "127.0.0.1:40124"); // the same ECU: no second target
    CHECK(rig.poller->status().size() == 1);
    REQUIRE(run_until(rig.io, [&] { return rig.failures() >= 1 || !rig.polled.empty(); }));
}

TEST_CASE("a dead target does not hold the others: each is polled on its own", "[poller]") {
    asio::io_context io;
    test::LocalApiServer silent(io); // accepts and never answers
    silent.set_behaviour(test::LocalApiBehaviour::Silent);
    test::LocalApiServer gone(io); // nothing listens there: refused
    test::LocalApiServer live(io);
    gone.refuse(); // after the live one took its port, which cannot be this one then
    std::ostringstream log_text;
    Logger log{log_text, LogLevel::Debug};
    PollerConfig config;
    // The dead ones first, as they would be with `auto` when they uploaded first.
    config.targets = {
        {"127.0.0.1", silent.port()}, {"127.0.0.1", gone.port()}, {"127.0.0.1", live.port()}};
    config.interval = std::chrono::seconds(60);
    config.timeout = std::chrono::seconds(5);
    config.first_poll = std::chrono::milliseconds(0);
    std::vector<std::string> polled_ids;
    EcuPoller poller(
        io, config, log,
        [&](const std::string& id, const PolledEcuFacts&, std::shared_ptr<const TimeZone>) {
            polled_ids.push_back(id);
        },
        [](const std::string&) { return false; });
    const auto started = std::chrono::steady_clock::now();
    poller.start();
    // The live ECU's answer comes while the silent one still holds its connection open (its
    // timeout is 5 s): it waits for no one.
    REQUIRE(run_until(
        io, [&] { return !polled_ids.empty(); }, std::chrono::seconds(2)));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    CHECK(polled_ids.front() == "216000000001");
    CHECK(live.requests().size() == 3);
    CHECK(silent.requests().size() == 1); // asked once, still waiting
    const auto status = poller.status();
    REQUIRE(status.size() == 3);
    CHECK(status[0].consecutive_failures == 0); // the silent one's poll is not over yet
    CHECK(status[1].consecutive_failures == 1); // refused at once
    CHECK(status[2].last_success_unix > 0);
    // Then the silent one times out, on its own: one failure, one request, never two at once.
    REQUIRE(run_until(
        io, [&] { return poller.status()[0].consecutive_failures == 1; }, std::chrono::seconds(8)));
    CHECK(silent.requests().size() == 1);
    CHECK(live.requests().size() == 3); // polled once per interval, not again meanwhile
    poller.stop();
}

TEST_CASE("connecting to an address that drops the attempt is given up before --poll-timeout",
          "[poller]") {
    using asio::ip::tcp;
    asio::io_context io;
    // A listener whose queue of connections is full and never accepted: the kernel drops the
    // next connection attempt, as for an ECU that answers only on its WLAN address.
    tcp::acceptor full(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    full.listen(0);
    const auto port = full.local_endpoint().port();
    std::vector<std::unique_ptr<tcp::socket>> queued;
    for (int i = 0; i < 2; ++i) {
        queued.push_back(std::make_unique<tcp::socket>(io));
        queued.back()->async_connect(tcp::endpoint(full.local_endpoint().address(), port),
                                     [](boost::system::error_code) {});
    }
    std::ostringstream log_text;
    Logger log{log_text, LogLevel::Debug};
    PollerConfig config;
    config.targets = {{"127.0.0.1", port}};
    config.interval = std::chrono::seconds(60);
    config.timeout = std::chrono::seconds(5);
    config.connect_timeout = std::chrono::milliseconds(300);
    config.first_poll = std::chrono::milliseconds(200);
    EcuPoller poller(
        io, config, log, [](const std::string&, const PolledEcuFacts&, auto) {},
        [](const std::string&) { return false; });
    const auto started = std::chrono::steady_clock::now();
    poller.start();
    REQUIRE(run_until(
        io, [&] { return poller.status().front().consecutive_failures == 1; },
        std::chrono::seconds(3)));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    CHECK(poller.status().front().last_failure == "0001: timed out connecting");
    poller.stop();
}

namespace {

// The fixture's ECU-info reply, answering as `ecu_id` (12 digits) instead of 216000000001.
std::string info_reply_as(test::LocalApiServer& ecu, const std::string& ecu_id) {
    auto reply = ecu.reply("0001");
    const auto at = reply.find("216000000001");
    REQUIRE(at != std::string::npos);
    reply.replace(at, ecu_id.size(), ecu_id);
    return reply;
}

} // namespace

TEST_CASE("an address answering as another ECU than the one uploading from it: a failed poll",
          "[poller]") {
    PollerRig rig;
    // ECU ...099 uploads from the configured address: the address polls it, and the answer as
    // ...001 is nobody's facts.
    rig.poller->start();
    rig.poller->on_upload("216000000099", "127.0.0.1:40123");
    REQUIRE(rig.poller->status().front().ecu_id == "216000000099");
    REQUIRE(run_until(rig.io, [&] { return rig.failures() >= 1; }));
    CHECK(rig.polled.empty());
    CHECK(rig.count("poll_failed ecu=216000000099") >= 1);
    CHECK(rig.count("answered as ECU 216000000001") >= 1);
    const auto status = rig.poller->status().front();
    CHECK(status.ecu_id == "216000000099");
    CHECK(status.last_failure.starts_with("0001: answered as ECU 216000000001"));
    for (const auto& request : rig.ecu.requests())
        CHECK(request == "APS1100160001END\n"); // nothing more asked of the wrong ECU
}

TEST_CASE("an address that answered as one ECU never feeds another", "[poller]") {
    PollerRig rig;
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    rig.ecu.set_reply("0001", info_reply_as(rig.ecu, "216000000099"));
    REQUIRE(run_until(rig.io, [&] { return rig.failures() >= 2; }));
    for (const auto& id : rig.polled_ids)
        CHECK(id == "216000000001");
    CHECK(rig.poller->status().front().ecu_id == "216000000001");
    CHECK(rig.count("answered as ECU 216000000099, but this address polls ECU 216000000001") >= 2);
}

TEST_CASE("two addresses answering as the same ECU: only the first feeds it", "[poller]") {
    asio::io_context io;
    test::LocalApiServer first(io);
    test::LocalApiServer second(io); // another address claiming the same id
    std::ostringstream log_text;
    Logger log{log_text, LogLevel::Debug};
    PollerConfig config;
    config.targets = {{"127.0.0.1", first.port()}, {"127.0.0.1", second.port()}};
    config.interval = std::chrono::milliseconds(150);
    config.timeout = std::chrono::milliseconds(300);
    config.first_poll = std::chrono::milliseconds(0);
    int fed = 0;
    EcuPoller poller(
        io, config, log,
        [&](const std::string& id, const PolledEcuFacts&, std::shared_ptr<const TimeZone>) {
            CHECK(id == "216000000001");
            ++fed;
        },
        [](const std::string&) { return false; });
    poller.start();
    REQUIRE(run_until(io, [&] {
        const auto s = poller.status();
        return s[0].consecutive_failures + s[1].consecutive_failures >= 2;
    }));
    const auto status = poller.status();
    const int fed_by = status[0].last_success_unix > 0 ? 0 : 1;
    CHECK(status[fed_by].ecu_id == "216000000001");
    CHECK(status[1 - fed_by].ecu_id.empty());
    CHECK(status[1 - fed_by].last_success_unix == 0);
    CHECK(status[1 - fed_by].last_failure.find("which is polled at 127.0.0.1:") !=
          std::string::npos);
    CHECK(fed >= 1);
    poller.stop();
}

TEST_CASE("with auto, an address another ECU uploads from now polls that ECU", "[poller]") {
    PollerRig rig(true);
    rig.poller->on_upload("216000000001", "127.0.0.1:40123");
    rig.poller->on_upload("216000000099", "127.0.0.1:40124"); // the lease went to another ECU
    const auto status = rig.poller->status();
    REQUIRE(status.size() == 1);
    CHECK(status.front().ecu_id == "216000000099");
    CHECK(rig.count("poll_ecu_tied ecu=216000000099") == 1);
}

TEST_CASE("an unprintable firmware leaves out the firmware only: the poll goes on", "[poller]") {
    PollerRig rig;
    auto reply = rig.ecu.reply("0001");
    reply[reply.find("ECU_R_1.3.6C") + 3] = '\x01';
    rig.ecu.set_reply("0001", reply);
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return rig.polled.size() >= 2; }));
    const auto& facts = rig.polled.front();
    CHECK(rig.polled_ids.front() == "216000000001");
    CHECK_FALSE(facts.firmware);
    CHECK(facts.time_zone == "Etc/GMT-8");
    CHECK(facts.inverters.size() == 6); // 0002 and 0030 asked and answered
    CHECK(rig.failures() == 0);
    CHECK(rig.count("poll_failed") == 0);
    // Said once, not on every poll.
    CHECK(rig.count("polled_text_refused") == 1);
    CHECK(rig.count("firmware text is not printable") == 1);
}

TEST_CASE("a refused zone name is logged once with why, and never used", "[poller]") {
    PollerRig rig;
    auto reply = rig.ecu.reply("0001");
    const auto at = reply.find("Etc/GMT-8");
    REQUIRE(at != std::string::npos);
    reply.replace(at, 9, "localtime");
    rig.ecu.set_reply("0001", reply);
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return rig.polled.size() >= 3; }));
    CHECK_FALSE(rig.polled.back().time_zone);
    CHECK(rig.zones.back().empty());
    CHECK(rig.count("polled_text_refused") == 1);
    CHECK(rig.count("not a zone name of the form Area/City or Etc/") == 1);
    CHECK(rig.count("tzdata") == 0); // not the hint for a missing zone file
}

TEST_CASE("a zone that changes between polls is used once said on three polls in a row",
          "[poller][tz]") {
    PollerRig rig;
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    REQUIRE(rig.zones.back() == "Etc/GMT-8");
    rig.ecu.set_reply("0001", test::ecu_info_with_zone(rig.ecu.reply("0001"), "Asia/Shanghai"));
    const auto polls_before = rig.polled.size();
    REQUIRE(run_until(rig.io, [&] { return rig.count("time_zone_change_taken") == 1; }));
    // Two polls of the new zone kept the old one; the third took it.
    REQUIRE(rig.polled.size() >= polls_before + 3);
    CHECK(rig.zones[polls_before] == "Etc/GMT-8");
    CHECK(rig.polled[polls_before].time_zone == "Etc/GMT-8");
    CHECK(rig.zones[polls_before + 1] == "Etc/GMT-8");
    CHECK(rig.zones[polls_before + 2] == "Asia/Shanghai");
    CHECK(rig.count("time_zone_changed ") == 1);
}

TEST_CASE("an ECU answering ECU info but failing 0002 answers: no backoff, the step named",
          "[poller]") {
    PollerRig rig;
    rig.ecu.set_reply("0002", test::port8899_reply("ksh270_ecu-b_0002_error_short.hex"));
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return rig.count("poll_failed") >= 3; }));
    CHECK(rig.count("poll_backoff") == 0);
    const auto status = rig.poller->status().front();
    CHECK(status.consecutive_failures == 0);
    CHECK_FALSE(status.failing_since_unix);
    CHECK(status.last_success_unix > 0);
    CHECK(status.step_failing.starts_with("0002: "));
    const auto shown = describe_poll_status(status, [](std::int64_t) { return "T"; });
    CHECK(shown.starts_with("port 8899 at 127.0.0.1 answers, but 0002 fails: "));
    CHECK(rig.polled.front().firmware == "ECU_R_1.3.6C"); // what did answer is used
    CHECK(rig.polled.front().inverters.size() == 6);      // from 0030
}

TEST_CASE("polled inverters are what the latest replies list, at most --max-inverters-per-ecu",
          "[poller]") {
    PollerRig rig;
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    REQUIRE(rig.polled.back().inverters.contains("901000000001"));
    // The inverter 901000000001 is replaced by 901000000099 on the ECU.
    for (const auto* command : {"0002", "0030"}) {
        auto reply = rig.ecu.reply(command);
        const std::string uid("\x90\x10\x00\x00\x00\x01", 6); // BCD
        const auto at = reply.find(uid);
        REQUIRE(at != std::string::npos);
        reply[at + 5] = '\x99';
        rig.ecu.set_reply(command, reply);
    }
    // Kept three intervals (450 ms here) at most, then gone.
    REQUIRE(run_until(rig.io, [&] {
        return !rig.polled.empty() && !rig.polled.back().inverters.contains("901000000001");
    }));
    CHECK(rig.polled.back().inverters.contains("901000000099"));
    CHECK(rig.polled.back().inverters.size() == 6);
}

TEST_CASE("at most max_in_flight polls at once", "[poller]") {
    asio::io_context io;
    std::vector<std::unique_ptr<test::LocalApiServer>> silent;
    PollerConfig config;
    for (int i = 0; i < 5; ++i) {
        silent.push_back(std::make_unique<test::LocalApiServer>(io));
        silent.back()->set_behaviour(test::LocalApiBehaviour::Silent);
        config.targets.push_back({"127.0.0.1", silent.back()->port()});
    }
    config.interval = std::chrono::seconds(60);
    config.timeout = std::chrono::milliseconds(600);
    config.first_poll = std::chrono::milliseconds(0);
    config.max_in_flight = 2;
    std::ostringstream log_text;
    Logger log{log_text, LogLevel::Debug};
    EcuPoller poller(
        io, config, log, [](const std::string&, const PolledEcuFacts&, auto) {},
        [](const std::string&) { return false; });
    const auto asked = [&] {
        std::size_t n = 0;
        for (const auto& server : silent)
            n += server->requests().size();
        return n;
    };
    poller.start();
    REQUIRE(run_until(
        io, [&] { return asked() == 2; }, std::chrono::milliseconds(500)));
    run_until(
        io, [] { return false; }, std::chrono::milliseconds(300)); // all 5 due, 2 under way
    CHECK(asked() == 2);
    // As those time out, the others are asked, two at a time.
    REQUIRE(run_until(
        io, [&] { return asked() == 5; }, std::chrono::seconds(5)));
    poller.stop();
}

TEST_CASE("with auto, an ECU silent for long or forgotten is no longer polled", "[poller]") {
    asio::io_context io;
    std::ostringstream log_text;
    Logger log{log_text, LogLevel::Debug};
    PollerConfig config;
    config.from_uploads = true;
    config.interval = std::chrono::milliseconds(100);
    config.timeout = std::chrono::milliseconds(100);
    config.first_poll = std::chrono::seconds(60); // not polled meanwhile: only found and dropped
    config.auto_target_silence = std::chrono::milliseconds(0);
    EcuPoller poller(
        io, config, log, [](const std::string&, const PolledEcuFacts&, auto) {},
        [](const std::string&) { return false; });
    poller.start();
    poller.on_upload("216000000001", "127.0.0.1:40123");
    poller.on_upload("216000000002", "127.0.0.2:40123");
    REQUIRE(poller.status().size() == 2);
    run_until(
        io, [] { return false; }, std::chrono::milliseconds(50)); // the loop waits for the first
    poller.forget("216000000001"); // the one the loop waits for: it looks again after waking
    REQUIRE(poller.status().size() == 1);
    CHECK(poller.status().front().ecu_id == "216000000002");
    // Three intervals without an upload: dropped, and found again with the next upload.
    REQUIRE(run_until(
        io, [&] { return poller.status().empty(); }, std::chrono::seconds(2)));
    CHECK(log_text.str().find("poll_ecu_dropped ecu=216000000002") != std::string::npos);
    poller.on_upload("216000000001", "127.0.0.1:40124");
    CHECK(poller.status().size() == 1);
    poller.stop();
}

TEST_CASE("a configured address polls the ECU uploading from it, even after another answered",
          "[poller]") {
    PollerRig rig;
    rig.poller->start();
    REQUIRE(run_until(rig.io, [&] { return !rig.polled.empty(); }));
    REQUIRE(rig.poller->status().front().ecu_id == "216000000001"); // by its first answer
    // ECU ...099 uploads from that address: the address is its, and ...001's answers fail.
    rig.poller->on_upload("216000000099", "127.0.0.1:40123");
    const auto status = rig.poller->status().front();
    CHECK(status.ecu_id == "216000000099");
    CHECK(status.last_success_unix == 0); // nothing of ...001 is kept for it
    const auto fed = rig.polled.size();
    REQUIRE(run_until(rig.io, [&] { return rig.failures() >= 1; }));
    CHECK(rig.polled.size() == fed);
    CHECK(rig.count("answered as ECU 216000000001, but this address polls ECU 216000000099") >= 1);
    // A new reading of another ECU from there later (the ECU replaced): that one takes it over.
    rig.poller->on_upload("216000000077", "127.0.0.1:40124");
    CHECK(rig.poller->status().front().ecu_id == "216000000077");
}

} // namespace test_ecu_poller
