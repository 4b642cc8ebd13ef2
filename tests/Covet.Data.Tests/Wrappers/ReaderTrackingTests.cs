using System.Data.Common;
using Covet.Data.Tests.TestSupport;
using Microsoft.Data.Sqlite;

namespace Covet.Data.Tests.Wrappers;

/// <summary>
/// Close closes the readers Covet's commands handed out, as the providers do; the tracking costs no allocation on the open
/// → close cycle nor on a query's reader (Dapper's select 1 path).
/// </summary>
[TestClass]
public sealed class ReaderTrackingTests
{
    private static string NewFile() => $"Data Source={Path.Combine(Path.GetTempPath(), $"covet-rt-{Guid.NewGuid():N}.db")}";

    [TestMethod]
    public void Close_WithTwoReadersOpen_ClosesBoth_AndReleasesTheReadLock()
    {
        var cs = NewFile();
        using var source = CovetDataSource.Create(SqliteFactory.Instance, cs, new CovetPoolOptions { MaxPoolSize = 1 });
        using (var setup = source.OpenConnection())
            setup.Exec("CREATE TABLE t (id INT); INSERT INTO t VALUES (1), (2)");
        var connection = source.OpenConnection();
        var a = Reader(connection);
        var b = Reader(connection);
        connection.Close();
        Assert.IsTrue(a.IsClosed);
        Assert.IsTrue(b.IsClosed);
        using var writer = new SqliteConnection(cs + ";Pooling=false;Default Timeout=1");
        writer.Open();
        writer.Exec("DROP TABLE t"); // "database is locked" if a reader kept its statement
    }

    [TestMethod]
    public void OpenClose_AndQueryThroughAReader_AllocateNothingForTracking()
    {
        using var source = CovetDataSource.Create(SqliteFactory.Instance, NewFile(), new CovetPoolOptions { MaxPoolSize = 1 });
        using (var warm = source.OpenConnection())
            _ = Query(warm);

        // Open → close: only the logical connection object itself.
        var connectionSize = Measure(() => { using var c = source.CreateConnection(); c.Open(); });
        var withReader = Measure(() => { using var c = source.CreateConnection(); c.Open(); _ = Query(c); });
        var readerOnly = Measure(() => { using var c = source.CreateConnection(); c.Open(); using var cmd = c.CreateCommand(); cmd.CommandText = "SELECT 1"; using var r = cmd.ExecuteReader(); r.Read(); });
        var withoutTracking = Measure(() =>
        {
            using var c = source.CreateConnection();
            c.Open();
            using var cmd = ((CovetDbConnection)c).UnderlyingConnection.CreateCommand(); // the provider's own command: nothing tracked
            cmd.CommandText = "SELECT 1";
            using var r = cmd.ExecuteReader();
            r.Read();
        });
        Console.WriteLine($"open → close {connectionSize} B; with a query {withReader} B; reader through Covet {readerOnly} B, through the provider command {withoutTracking} B");
        Assert.IsLessThanOrEqualTo(104, connectionSize, $"open → close allocated {connectionSize} B");
        Assert.IsGreaterThan(0, withReader);
        // Covet's command wraps the provider's: its wrapper is the only difference from the untracked path.
        Assert.IsLessThanOrEqualTo(withoutTracking + 200, readerOnly, $"tracked {readerOnly} B vs untracked {withoutTracking} B");
    }

    private static DbDataReader Reader(DbConnection connection)
    {
        var command = connection.CreateCommand();
        command.CommandText = "SELECT id FROM t";
        var reader = command.ExecuteReader();
        reader.Read();
        return reader;
    }

    private static object? Query(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT 1";
        using var reader = command.ExecuteReader();
        reader.Read();
        return reader.GetValue(0);
    }

    private static long Measure(Action action)
    {
        for (var i = 0; i < 20; i++)
            action();
        const int n = 200;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < n; i++)
            action();
        return (GC.GetAllocatedBytesForCurrentThread() - before) / n;
    }
}
