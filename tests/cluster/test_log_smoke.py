from manticore_cluster.log import JetStreamJournal


def test_smoke(nats_options):
    journal = JetStreamJournal(nats_options, "main")
    assert list(journal.read()) == []
    journal.start()
    positions = [journal.append({"op": "x", "i": i}) for i in range(100)]
    assert journal.wait(positions[-1], 10)
    print("batches", journal.batches)
    journal.close()
    again = JetStreamJournal(nats_options, "main")
    records = list(again.read())
    assert [r["i"] for r in records] == list(range(100))
    assert [r["n"] for r in records] == list(range(1, 101))
    assert again.appended == 100
    again.start()
    assert again.wait(again.append({"op": "y"}), 10)
    assert [r["n"] for r in again.durable_records(after=98)] == [99, 100, 101]
    again.close()
