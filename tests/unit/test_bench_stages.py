"""bench/stages.py: Flight Recorder samples put into the consumer's stages (pure logic)."""

from bench.stages import OTHER, parse_samples, stage_of, stage_shares

# The shape of ``jfr print`` output (JDK 17), trimmed to what the parser reads.
JFR_TEXT = """
jdk.ExecutionSample {
  startTime = 06:30:01.123
  sampledThread = "Executor task launch worker for task 0.0 in stage 1.0 (TID 1)" (javaThreadId = 91)
  state = "STATE_RUNNABLE"
  stackTrace = [
    org.apache.spark.unsafe.types.UTF8String.fromBytes(byte[], int, int) line: 140
    org.apache.spark.sql.catalyst.json.JacksonParser.$anonfun$makeConverter$9(JacksonParser) line: 290
    org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage1.processNext()
    ...
  ]
}

jdk.NativeMethodSample {
  startTime = 06:30:01.140
  sampledThread = "Executor task launch worker for task 1.0 in stage 1.0 (TID 2)" (javaThreadId = 92)
  state = "STATE_IN_NATIVE"
  stackTrace = [
    sun.nio.ch.SocketDispatcher.read0(FileDescriptor, long, int)
    java.io.DataInputStream.readInt() line: 393
    org.apache.spark.sql.execution.python.PythonArrowOutput$$anon$1.read() line: 80
  ]
}

jdk.ExecutionSample {
  startTime = 06:30:01.150
  sampledThread = "dag-scheduler-event-loop" (javaThreadId = 40)
  state = "STATE_RUNNABLE"
  stackTrace = [
    org.apache.spark.scheduler.DAGScheduler.submitStage(Stage) line: 1
  ]
}
"""


def test_jfr_text_is_read_into_threads_and_frames():
    samples = list(parse_samples(JFR_TEXT.splitlines()))
    assert [thread for thread, _ in samples] == [
        "Executor task launch worker for task 0.0 in stage 1.0 (TID 1)",
        "Executor task launch worker for task 1.0 in stage 1.0 (TID 2)",
        "dag-scheduler-event-loop",
    ]
    assert len(samples[0][1]) == 3 and samples[0][1][1].startswith("org.apache.spark.sql.catalyst.json.JacksonParser")


def test_a_sample_counts_for_the_innermost_specific_stage():
    kafka_in_archive = ["org.apache.kafka.clients.consumer.KafkaConsumer.poll", "o.a.s.FileFormatWriter.write"]
    assert stage_of(kafka_in_archive) == "Kafka read"
    string_in_parser = ["org.apache.spark.unsafe.types.UTF8String.fromBytes", "x.json.JacksonParser.parse"]
    assert stage_of(string_in_parser) == "JSON parse (from_json, variants)"
    assert stage_of(["java.util.regex.Matcher.find", "x.GeneratedClass$Iterator.processNext"]).startswith("regex")
    assert stage_of(["org.apache.spark.executor.Executor$TaskRunner.run"]) == OTHER


def test_shares_count_executor_threads_only():
    shares = dict(stage_shares(parse_samples(JFR_TEXT.splitlines())))
    assert shares == {"JSON parse (from_json, variants)": 0.5, "Python UDF (VADER, Arrow exchange)": 0.5}
    assert stage_shares([]) == []
