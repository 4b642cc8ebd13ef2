using System.Data;
using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>DbDataReader: Close/Dispose, NextResult, typed getters, streams, schema, reading after close, and the connection closed under an open reader.</summary>
internal static class ReaderScenarios
{
    private const string Row = "SELECT 42 AS i, 'abc' AS s, 1.5 AS d, NULL AS n";

    private static readonly (string How, Func<DbConnection, Task> Close)[] Closes =
    [
        ("Close", c => { c.Close(); return Task.CompletedTask; }),
        ("Dispose", c => { c.Dispose(); return Task.CompletedTask; }),
        ("CloseAsync", c => c.CloseAsync()),
        ("DisposeAsync", async c => await c.DisposeAsync()),
    ];

    public static IEnumerable<Scenario> All()
    {
        foreach (var (how, close) in Closes)
        {
            foreach (var readToEnd in new[] { false, true })
            {
                var label = readToEnd ? "read-to-end" : "partly-read";
                yield return Scenario.Async($"reader.connection-{how}-with-reader-open-{label}", async r =>
                {
                    var c = r.Open();
                    r.R.Events(c);
                    var reader = r.Own(r.Command(c, "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3").ExecuteReader());
                    reader.Read();
                    if (readToEnd)
                        while (reader.Read()) { }
                    await r.R.TryAsync(how, () => close(c));
                    r.R.Val("IsClosed", reader.IsClosed);
                    r.R.Try("Read after", () => reader.Read());
                    r.R.Try("reader Close after", reader.Close);
                    // The next borrower of the same physical connection (pools of one).
                    for (var i = 0; i < 3; i++)
                    {
                        var next = r.Open();
                        r.R.Try($"next borrower {i} query", () => Convert.ToInt64(r.Scalar(next, "SELECT 7")));
                        next.Close();
                    }
                });
            }
        }

        yield return Scenario.Sync("reader.sqlite-read-lock-released-on-close", r =>
        {
            var setup = r.Open();
            var table = r.CreateTable(setup);
            r.Exec(setup, $"INSERT INTO {table} (id, name) VALUES (1, 'a'), (2, 'b')");
            setup.Close();
            var c = r.Open();
            var reader = r.Own(r.Command(c, $"SELECT * FROM {table}").ExecuteReader());
            reader.Read();
            c.Close();
            var writer = r.Own(new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={r.S.File};Default Timeout=1;Pooling=false"));
            writer.Open();
            r.R.Try("write from another connection", () => r.Exec(writer, $"DROP TABLE {table}"));
        }).On(TargetKind.SqliteFile);

        yield return Scenario.Sync("reader.close-then-use", r =>
        {
            var c = r.Open();
            var reader = r.Command(c, Row).ExecuteReader();
            reader.Read();
            r.R.Try("Close", reader.Close);
            r.R.Val("IsClosed", reader.IsClosed);
            r.R.Try("Read", () => reader.Read());
            r.R.Try("GetValue", () => reader.GetValue(0));
            r.R.Try("FieldCount", () => reader.FieldCount);
            r.R.Try("HasRows", () => reader.HasRows);
            r.R.Try("NextResult", () => reader.NextResult());
            r.R.Try("Close again", reader.Close);
            r.R.Try("Dispose", reader.Dispose);
            r.R.Val("connection State", c.State);
        });

        yield return Scenario.Sync("reader.dispose-then-use", r =>
        {
            var c = r.Open();
            var reader = r.Command(c, Row).ExecuteReader();
            r.R.Try("Dispose", reader.Dispose);
            r.R.Val("IsClosed", reader.IsClosed);
            r.R.Try("Read", () => reader.Read());
            r.R.Try("query on connection", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
        });

        yield return Scenario.Sync("reader.typed-getters", r =>
        {
            var c = r.Open();
            using var reader = r.Command(c, Row).ExecuteReader();
            r.R.Val("HasRows", reader.HasRows);
            r.R.Val("Read", reader.Read());
            r.R.Val("FieldCount", reader.FieldCount);
            r.R.Val("VisibleFieldCount", reader.VisibleFieldCount);
            r.R.Val("Depth", reader.Depth);
            for (var i = 0; i < reader.FieldCount; i++)
            {
                r.R.Try($"GetName({i})", () => reader.GetName(i));
                r.R.Try($"GetFieldType({i})", () => reader.GetFieldType(i));
                r.R.Try($"GetDataTypeName({i})", () => reader.GetDataTypeName(i));
                r.R.Try($"IsDBNull({i})", () => reader.IsDBNull(i));
                r.R.Try($"GetValue({i})", () => reader.GetValue(i));
                r.R.Try($"indexer[{i}]", () => reader[i]);
                r.R.Try($"GetProviderSpecificValue({i})", () => reader.GetProviderSpecificValue(i));
            }
            r.R.Try("GetFieldValue<int>(i)", () => reader.GetFieldValue<int>(0));
            r.R.Try("GetFieldValue<long>(i)", () => reader.GetFieldValue<long>(0));
            r.R.Try("GetFieldValue<string>(i)", () => reader.GetFieldValue<string>(0));
            r.R.Try("GetInt32(i)", () => reader.GetInt32(0));
            r.R.Try("GetInt64(i)", () => reader.GetInt64(0));
            r.R.Try("GetInt16(i)", () => reader.GetInt16(0));
            r.R.Try("GetString(s)", () => reader.GetString(1));
            r.R.Try("GetFieldValue<string>(s)", () => reader.GetFieldValue<string>(1));
            r.R.Try("GetInt32(s)", () => reader.GetInt32(1));
            r.R.Try("GetChar(s)", () => reader.GetChar(1));
            r.R.Try("GetDouble(d)", () => reader.GetDouble(2));
            r.R.Try("GetDecimal(d)", () => reader.GetDecimal(2));
            r.R.Try("GetFieldValue<double>(d)", () => reader.GetFieldValue<double>(2));
            r.R.Try("GetString(n)", () => reader.GetString(3));
            r.R.Try("GetFieldValue<object>(n)", () => reader.GetFieldValue<object>(3));
            r.R.Try("GetFieldValue<int?>(n)", () => reader.GetFieldValue<int?>(3));
            r.R.Try("GetOrdinal(s)", () => reader.GetOrdinal("s"));
            r.R.Try("GetOrdinal(S)", () => reader.GetOrdinal("S"));
            r.R.Try("GetOrdinal(missing)", () => reader.GetOrdinal("missing"));
            r.R.Try("indexer[s]", () => reader["s"]);
            r.R.Try("GetValue(99)", () => reader.GetValue(99));
            var values = new object[4];
            r.R.Try("GetValues", () => reader.GetValues(values));
            r.R.Val("values", values);
            r.R.Val("Read past end", reader.Read());
            r.R.Try("GetValue after end", () => reader.GetValue(0));
        });

        yield return Scenario.Async("reader.typed-getters-async", async r =>
        {
            var c = r.Open();
            await using var reader = await r.Command(c, Row).ExecuteReaderAsync();
            r.R.Val("ReadAsync", await reader.ReadAsync());
            await r.R.TryAsync("GetFieldValueAsync<int>", () => reader.GetFieldValueAsync<int>(0));
            await r.R.TryAsync("GetFieldValueAsync<string>", () => reader.GetFieldValueAsync<string>(1));
            await r.R.TryAsync("IsDBNullAsync(n)", () => reader.IsDBNullAsync(3));
            await r.R.TryAsync("GetFieldValueAsync<string>(n)", () => reader.GetFieldValueAsync<string>(3));
            r.R.Val("ReadAsync end", await reader.ReadAsync());
        });

        yield return Scenario.Sync("reader.get-before-read", r =>
        {
            var c = r.Open();
            using var reader = r.Command(c, Row).ExecuteReader();
            r.R.Try("GetValue before Read", () => reader.GetValue(0));
            r.R.Try("IsDBNull before Read", () => reader.IsDBNull(0));
            r.R.Try("GetName before Read", () => reader.GetName(0));
        });

        yield return Scenario.Sync("reader.streams", r =>
        {
            var c = r.Open();
            using var reader = r.Command(c, "SELECT 'streamed text' AS s").ExecuteReader();
            reader.Read();
            r.R.Try("GetTextReader", () => { using var text = reader.GetTextReader(0); return text.ReadToEnd(); });
            r.R.Try("GetChars length", () => reader.GetChars(0, 0, null, 0, 0));
            var chars = new char[6];
            r.R.Try("GetChars", () => reader.GetChars(0, 0, chars, 0, 6));
            r.R.Val("chars", new string(chars));
            r.R.Try("GetStream", () => { using var stream = reader.GetStream(0); using var m = new MemoryStream(); stream.CopyTo(m); return m.ToArray(); });
            r.R.Try("GetBytes length", () => reader.GetBytes(0, 0, null, 0, 0));
        });

        yield return Scenario.Sync("reader.sequential-access-order", r =>
        {
            var c = r.Open();
            using var reader = r.Command(c, Row).ExecuteReader(CommandBehavior.SequentialAccess);
            reader.Read();
            r.R.Try("GetValue(1)", () => reader.GetValue(1));
            r.R.Try("GetValue(0) after 1", () => reader.GetValue(0));
            r.R.Try("GetValue(1) again", () => reader.GetValue(1));
        });

        yield return Scenario.Sync("reader.schema-table", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            using var reader = r.Command(c, $"SELECT id, name FROM {table}").ExecuteReader(CommandBehavior.KeyInfo);
            var schema = r.R.Try("GetSchemaTable", reader.GetSchemaTable);
            if (schema is not null)
                r.R.Val("ColumnName values", schema.Rows.Cast<DataRow>().Select(row => row["ColumnName"]).ToList());
            r.R.Try("GetColumnSchema names", () => reader.GetColumnSchema().Select(col => col.ColumnName).ToList());
            r.R.Try("GetColumnSchema key", () => reader.GetColumnSchema().Select(col => col.IsKey).ToList());
        }).Pool(2); // Npgsql opens a second connection for KeyInfo metadata

        yield return Scenario.Async("reader.schema-table-async", async r =>
        {
            var c = r.Open();
            await using var reader = await r.Command(c, Row).ExecuteReaderAsync();
            await r.R.TryAsync("GetSchemaTableAsync", () => reader.GetSchemaTableAsync());
            await r.R.TryAsync("GetColumnSchemaAsync count", async () => (await reader.GetColumnSchemaAsync()).Count);
        });

        yield return Scenario.Sync("reader.next-result", r =>
        {
            var c = r.Open();
            using var reader = r.Command(c, "SELECT 1; SELECT 'two', 2; SELECT 3").ExecuteReader();
            CommandScenarios.ReadAll(r, reader);
            r.R.Try("NextResult past end", () => reader.NextResult());
            r.R.Try("Read past last", () => reader.Read());
        });

        yield return Scenario.Sync("reader.next-result-skips-rows", r =>
        {
            var c = r.Open();
            using var reader = r.Command(c, "SELECT 1 UNION ALL SELECT 2; SELECT 3").ExecuteReader();
            r.R.Val("NextResult without reading", reader.NextResult());
            r.R.Val("Read", reader.Read());
            r.R.Val("value", reader.GetValue(0));
        });

        yield return Scenario.Sync("reader.enumerator", r =>
        {
            var c = r.Open();
            using var reader = r.Command(c, "SELECT 1 UNION ALL SELECT 2").ExecuteReader();
            var values = new List<object>();
            foreach (IDataRecord record in reader)
                values.Add(record.GetValue(0));
            r.R.Val("values", values);
            r.R.Val("IsClosed", reader.IsClosed);
        });

        yield return Scenario.Sync("reader.empty-result", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            using var reader = r.Command(c, $"SELECT * FROM {table}").ExecuteReader();
            r.R.Val("HasRows", reader.HasRows);
            r.R.Val("FieldCount", reader.FieldCount);
            r.R.Val("Read", reader.Read());
        });

        yield return Scenario.Sync("reader.close-connection-behavior", r =>
        {
            var c = r.Open();
            r.R.Events(c);
            var reader = r.Command(c, "SELECT 1").ExecuteReader(CommandBehavior.CloseConnection);
            reader.Read();
            r.R.Try("reader Dispose", reader.Dispose);
            r.R.Val("connection State", c.State);
            r.R.Try("reopen", c.Open);
            r.R.Try("query", () => Convert.ToInt64(r.Scalar(c, "SELECT 1")));
        });

        yield return Scenario.Async("reader.close-connection-behavior-async", async r =>
        {
            var c = r.Open();
            r.R.Events(c);
            var reader = await r.Command(c, "SELECT 1").ExecuteReaderAsync(CommandBehavior.CloseConnection);
            await reader.ReadAsync();
            await r.R.TryAsync("reader DisposeAsync", async () => await reader.DisposeAsync());
            r.R.Val("connection State", c.State);
        });

        yield return Scenario.Sync("reader.close-connection-behavior-then-connection-close", r =>
        {
            var c = r.Open();
            r.R.Events(c);
            var reader = r.Own(r.Command(c, "SELECT 1").ExecuteReader(CommandBehavior.CloseConnection));
            r.R.Try("connection Close", c.Close);
            r.R.Val("IsClosed", reader.IsClosed);
            r.R.Try("reader Close", reader.Close);
            r.R.Val("connection State", c.State);
        }).Differs("connection Close", "Microsoft.Data.Sqlite throws NullReferenceException when a connection is closed under its own CloseConnection reader; Covet closes the reader and the connection", Targets.Sqlite);

        yield return Scenario.Sync("reader.second-reader-while-open", r =>
        {
            var c = r.Open();
            var first = r.Own(r.Command(c, "SELECT 1 UNION ALL SELECT 2").ExecuteReader());
            first.Read();
            r.R.Try("second reader", () => { using var second = r.Command(c, "SELECT 3").ExecuteReader(); return second.Read(); });
            r.R.Try("first Read", () => first.Read());
        });

        yield return Scenario.Sync("reader.sqlite-write-while-reading", r =>
        {
            var c = r.Open();
            var table = r.CreateTable(c);
            r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (1, 'a')");
            var reader = r.Own(r.Command(c, $"SELECT * FROM {table}").ExecuteReader());
            reader.Read();
            r.R.Try("insert while reading", () => r.Exec(c, $"INSERT INTO {table} (id, name) VALUES (2, 'b')"));
            reader.Close();
            r.Count("rows", c, table);
        }).On(Targets.Sqlite);
    }
}
