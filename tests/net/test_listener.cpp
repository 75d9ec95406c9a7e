// The listener and service over real loopback sockets, in-process.
#include "ecu2mqtt/app/service.hpp"
#include "ecu2mqtt/net/listener.hpp"
#include "support/fixed_clock.hpp"
#include "support/net.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_listener {
namespace {

class RecordingSink final : public ReadingSink {
  public:
    void on_realtime(const RealtimeUpload& upload, std::chrono::system_clock::time_point,
                     HandlingDone done) override {
        {
            std::lock_guard lock(mutex_);
            uploads_.push_back(upload);
        }
        done({});
    }
    void on_raw(const std::string&, std::string_view) override {}
    std::size_t uploads() const {
        std::lock_guard lock(mutex_);
        return uploads_.size();
    }

  private:
    mutable std::mutex mutex_;
    std::vector<RealtimeUpload> uploads_;
};

// A running listener on an ephemeral loopback port with its own io thread.
struct RunningListener {
    explicit RunningListener(ListenerConfig config = {}, ServiceOptions options = {})
        : log(log_text, LogLevel::Debug), service(clock, log, &sink, std::move(options)) {
        config.address = "127.0.0.1";
        if (config.ports.empty())
            config.ports = {0, 0};
        listener = std::make_unique<Listener>(io, config, service, log);
        listener->start();
        ports = listener->bound_ports();
        thread = std::thread([this] { io.run(); });
    }
    ~RunningListener() {
        if (thread.joinable()) {
            stop();
            thread.join();
        }
    }
    void stop() {
        std::promise<void> done;
        boost::asio::post(io, [&] {
            listener->stop();
            done.set_value();
        });
        done.get_future().wait();
    }
    std::size_t open_connections() {
        std::promise<std::size_t> count;
        boost::asio::post(io, [&] { count.set_value(listener->open_connections()); });
        return count.get_future().get();
    }

    std::stringstream log_text;
    Logger log;
    test::FixedClock clock{LocalDateTime{2026, 11, 25, 9, 30, 0}};
    RecordingSink sink;
    Service service;
    boost::asio::io_context io;
    std::unique_ptr<Listener> listener;
    std::vector<std::uint16_t> ports;
    std::thread thread;
};

const std::string kCapturedReply = "10120240206111714";

} // namespace

TEST_CASE("a message sent whole and one sent in 1-byte pieces both get the exact reply") {
    RunningListener running;
    const auto msg = test::captured_upload();
    CHECK(test::upload(running.ports[0], msg) == kCapturedReply);
    CHECK(test::upload(running.ports[1], msg, 1) == kCapturedReply);
    CHECK(running.sink.uploads() == 2);
}

TEST_CASE("two ECUs interleaved on the same port are each answered") {
    RunningListener running;
    auto a = test::captured_upload_spec();
    auto b = test::captured_upload_spec();
    b.ecu_id = "216200000077";
    b.timestamp = "20240206120000";
    const auto msg_a = test::build_upload(a), msg_b = test::build_upload(b);
    test::TcpClient ecu_a(running.ports[0]), ecu_b(running.ports[0]);
    ecu_a.send(msg_a.substr(0, 100));
    ecu_b.send(msg_b.substr(0, 150));
    ecu_a.send(msg_a.substr(100));
    ecu_b.send(msg_b.substr(150));
    CHECK(ecu_a.receive(17) == kCapturedReply);
    CHECK(ecu_b.receive(17) == "10120240206115500");
}

TEST_CASE("junk, oversized and idle connections are closed - the next upload is answered") {
    ListenerConfig config;
    config.idle_timeout = 300ms;
    config.max_message_bytes = 4096;
    RunningListener running(config);
    const auto port = running.ports[0];

    {
        test::TcpClient junk(port);
        junk.send("GET / HTTP/1.0 END\n");
        CHECK(junk.closed_by_peer()); // not an ECU: no answer
    }
    {
        test::TcpClient flood(port);
        std::string garbage(5000, '\x07');
        try {
            flood.send(garbage);
        } catch (const std::runtime_error&) {
        }
        CHECK(flood.closed_by_peer());
    }
    {
        test::TcpClient huge_claim(port);
        huge_claim.send("APS18999999AAAAAA1");
        CHECK(huge_claim.closed_by_peer());
    }
    {
        test::TcpClient idle(port);
        idle.send(test::captured_upload().substr(0, 40)); // then nothing
        const auto start = std::chrono::steady_clock::now();
        CHECK(idle.closed_by_peer());
        CHECK(std::chrono::steady_clock::now() - start < 2s);
    }
    CHECK(test::upload(port, test::captured_upload()) == kCapturedReply);
    CHECK(running.service.counters().incomplete >= 1);
    CHECK(running.log_text.str().find("reason=\"idle timeout\"") != std::string::npos);
}

TEST_CASE("a malformed upload is answered like an upload, logged with its offset and kept") {
    RunningListener running;
    std::string bad = test::captured_upload();
    bad[8] = 'x'; // the length field
    CHECK(test::upload(running.ports[0], bad) == kCapturedReply);
    CHECK(running.sink.uploads() == 0);
    const auto log = running.log_text.str();
    CHECK(log.find("event=undecodable_message ecu=216000064136") != std::string::npos);
    CHECK(log.find("offset 5") != std::string::npos);
    CHECK(log.find(bad.substr(0, 60)) != std::string::npos); // the raw text is in the log
}

TEST_CASE("a malformed inverter block loses that inverter only, logged with its bytes") {
    RunningListener running;
    std::string bad = test::captured_upload();
    bad[140] = 'x'; // a channel's current, in the first inverter's block
    CHECK(test::upload(running.ports[0], bad) == kCapturedReply);
    CHECK(running.sink.uploads() == 1); // the other inverter still counts
    const auto log = running.log_text.str();
    CHECK(log.find("event=inverter_block_left_out ecu=216000064136") != std::string::npos);
    CHECK(log.find("offset 137") != std::string::npos);
    CHECK(log.find(bad.substr(83, 40)) != std::string::npos); // the block's bytes are in the log
}

TEST_CASE("at the connection limit the least active connection makes room for the newcomer") {
    ListenerConfig config;
    config.max_connections = 2;
    RunningListener running(config);
    const auto port = running.ports[0];
    test::TcpClient first(port);
    first.send("APS18");
    while (running.open_connections() < 1)
        std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(20ms);
    test::TcpClient second(port);
    second.send("APS18");
    while (running.open_connections() < 2)
        std::this_thread::sleep_for(5ms);
    test::TcpClient third(port); // evicts `first`, idle the longest
    CHECK(first.closed_by_peer());
    third.send(test::captured_upload());
    CHECK(third.receive(17) == kCapturedReply);
    second.send(test::captured_upload().substr(5));
    CHECK(second.receive(17) == kCapturedReply);
    CHECK(running.listener->counters().evicted_at_limit == 1);
}

TEST_CASE("stop: idle connections close at once, a message in flight still gets its reply") {
    RunningListener running;
    const auto msg = test::captured_upload();
    test::TcpClient idle(running.ports[0]);
    test::TcpClient busy(running.ports[0]);
    busy.send(msg.substr(0, 200));
    while (running.open_connections() < 2)
        std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(20ms);
    running.stop();
    CHECK(idle.closed_by_peer());
    busy.send(msg.substr(200));
    CHECK(busy.receive(17) == kCapturedReply);
    CHECK_THROWS(test::TcpClient(running.ports[0])); // no longer accepting
    const auto start = std::chrono::steady_clock::now();
    running.thread.join(); // the io_context runs out of work by itself
    CHECK(std::chrono::steady_clock::now() - start < 1s);
}

TEST_CASE("slowloris: a connection sending one byte at a time is closed at its maximum age") {
    ListenerConfig config;
    config.idle_timeout = 400ms;
    config.max_connection_age = 600ms;
    RunningListener running(config);
    test::TcpClient slow(running.ports[0]);
    const auto start = std::chrono::steady_clock::now();
    bool closed = false;
    for (int i = 0; i < 20 && !closed; ++i) {
        try {
            slow.send("A");
        } catch (const std::runtime_error&) {
            closed = true;
            break;
        }
        std::this_thread::sleep_for(150ms); // always within the idle timeout
        closed = running.open_connections() == 0;
    }
    CHECK(closed);
    CHECK(std::chrono::steady_clock::now() - start < 1500ms);
    CHECK(running.listener->counters().too_old == 1);
    CHECK(test::upload(running.ports[0], test::captured_upload()) == kCapturedReply);
}

TEST_CASE("a valid message repeated 100 times a second is answered every time") {
    RunningListener running;
    const auto msg = test::captured_upload();
    int answered = 0;
    for (int i = 0; i < 200; ++i) {
        answered += test::upload(running.ports[i % 2], msg) == kCapturedReply ? 1 : 0;
        std::this_thread::sleep_for(10ms);
    }
    CHECK(answered == 200);
}

TEST_CASE("allow-lists: other peers and other ECU ids are closed without an answer") {
    SECTION("peer outside the allowed ranges") {
        ListenerConfig config;
        config.allowed_peers = {"10.0.0.0/8", "::1"};
        RunningListener running(config);
        test::TcpClient refused(running.ports[0]);
        CHECK(refused.closed_by_peer());
        CHECK(running.listener->counters().refused_peers == 1);
    }
    SECTION("loopback allowed by range") {
        ListenerConfig config;
        config.allowed_peers = {"127.0.0.0/8"};
        RunningListener running(config);
        CHECK(test::upload(running.ports[0], test::captured_upload()) == kCapturedReply);
    }
    SECTION("a bad range is refused at start") {
        ListenerConfig config;
        config.allowed_peers = {"192.168.1.0/33"};
        CHECK_THROWS_WITH(RunningListener(config), Catch::Contains("192.168.1.0/33"));
    }
}

TEST_CASE("an ECU id outside the allow-list is closed without an answer and not published") {
    RunningListener running({}, ServiceOptions{true, {"216200000001"}});
    test::TcpClient ecu(running.ports[0]);
    ecu.send(test::captured_upload());
    CHECK(ecu.closed_by_peer());
    CHECK(running.sink.uploads() == 0);
    CHECK(running.service.counters().not_allowed == 1);
}

namespace {

// Says the upload could not be kept, remembering the last one that was.
class FailingSink final : public ReadingSink {
  public:
    void on_realtime(const RealtimeUpload&, std::chrono::system_clock::time_point,
                     HandlingDone done) override {
        done({false, false, parse_compact_timestamp("20240206110000")});
    }
    void on_raw(const std::string&, std::string_view) override {}
};

} // namespace

TEST_CASE(
    "an upload that could not be kept is answered with the last kept one, unless backfill is off") {
    test::FixedClock clock(LocalDateTime{2026, 11, 25, 9, 30, 0});
    std::stringstream log_text;
    Logger log(log_text, LogLevel::Debug);
    FailingSink sink;
    Service with_backfill(clock, log, &sink, ServiceOptions{true, {}});
    Service without_backfill(clock, log, &sink, ServiceOptions{false, {}});
    const auto msg = test::captured_upload();
    // The sink answers at once, so the reply comes before on_message returns.
    const auto reply_of = [&](Service& service) {
        std::optional<std::string> reply;
        service.on_message({msg, 8995, "test"},
                           [&](std::optional<std::string> bytes) { reply = std::move(bytes); });
        return reply.value_or("");
    };
    CHECK(reply_of(with_backfill) == "10120240206110000");
    CHECK(reply_of(without_backfill) == kCapturedReply);
    CHECK(with_backfill.counters().not_handled == 1);
    CHECK(log_text.str().find("asking the ECU to re-send from 2024-02-06T11:00:00") !=
          std::string::npos);
}

} // namespace test_listener
