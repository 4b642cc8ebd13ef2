using System.Diagnostics;
using Covet.Data.Providers;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// The race a socket check cannot close by itself, measured and then closed for PostgreSQL by proof:
/// <c>pg_terminate_backend</c> (and MariaDB's <c>KILL</c>) return before the server has told the client; a checkout in
/// that window sees a quiet socket. These tests measure the window, measure the probe's cost, and show when
/// <see cref="ProviderDialect.FailedBeforeUserCommand"/> may say a failed command was never read.
/// </summary>
[TestClass]
public sealed class SocketProbeRaceTests
{
    private const int Trials = 200;

    private static ProviderDialect PgDialect => ProviderDialect.For(NpgsqlFactory.Instance);
    private static ProviderDialect MySqlDialect => ProviderDialect.For(MySqlConnectorFactory.Instance);

    private static string PgPhysical() =>
        new NpgsqlConnectionStringBuilder(Pg.BaseConnectionString) { Pooling = false, ApplicationName = Pg.NewApplicationName("race") }.ConnectionString;

    private static async Task<NpgsqlConnection> OpenPgAsync()
    {
        var connection = new NpgsqlConnection(PgPhysical());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select 1", connection);
        await command.ExecuteScalarAsync();
        return connection;
    }

    private static string Describe(List<double> microseconds)
    {
        microseconds.Sort();
        return $"min {microseconds[0]:F0} µs, median {microseconds[microseconds.Count / 2]:F0} µs, p90 {microseconds[microseconds.Count * 9 / 10]:F0} µs, max {microseconds[^1]:F0} µs (n={microseconds.Count})";
    }

    /// <summary>Spins on the probe until it leaves Quiet (then until Closed); the elapsed times since <paramref name="start"/>.</summary>
    private static (double ToSignal, double ToClosed, SocketState First) SpinUntilClosed(ProviderDialect dialect, System.Data.Common.DbConnection connection, long start)
    {
        var first = SocketState.Quiet;
        double toSignal = -1;
        var bound = Stopwatch.GetTimestamp() + Stopwatch.Frequency; // 1 s
        while (Stopwatch.GetTimestamp() < bound)
        {
            var state = dialect.ProbeSocket(connection);
            if (state == SocketState.Quiet)
                continue;
            if (toSignal < 0)
            {
                toSignal = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                first = state;
            }
            if (state == SocketState.Closed)
                return (toSignal, Stopwatch.GetElapsedTime(start).TotalMicroseconds, first);
        }
        Assert.Fail($"the killed connection's socket did not read Closed within 1 s (first non-quiet state: {first})");
        return default;
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task Postgres_TerminateReturnsBeforeTheSocketTells_MeasureTheWindow()
    {
        await using var admin = Pg.OpenAdmin();
        var atReturn = new Dictionary<SocketState, int>();
        var toSignal = new List<double>();
        var toClosed = new List<double>();
        for (var i = 0; i < Trials; i++)
        {
            await using var connection = await OpenPgAsync();
            await using var command = new NpgsqlCommand($"select pg_terminate_backend({connection.ProcessID})", admin);
            command.ExecuteScalar(); // sync: the probe starts on this thread the moment the reply is read
            var start = Stopwatch.GetTimestamp();
            var state = PgDialect.ProbeSocket(connection);
            atReturn[state] = atReturn.GetValueOrDefault(state) + 1;
            var (signal, closed, _) = SpinUntilClosed(PgDialect, connection, start);
            toSignal.Add(signal);
            toClosed.Add(closed);
        }
        Console.WriteLine($"PostgreSQL, probe at the moment pg_terminate_backend returned: {string.Join(", ", atReturn.Select(p => $"{p.Key} x{p.Value}"))}");
        Console.WriteLine($"PostgreSQL, from the return to the socket reading non-quiet: {Describe(toSignal)}");
        Console.WriteLine($"PostgreSQL, from the return to the socket reading Closed: {Describe(toClosed)}");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task MariaDb_KillReturnsBeforeTheSocketTells_MeasureTheWindow()
    {
        await using var admin = MySql.OpenAdmin();
        var atReturn = new Dictionary<SocketState, int>();
        var toSignal = new List<double>();
        var toClosed = new List<double>();
        var firstStates = new Dictionary<SocketState, int>();
        var physical = new MySqlConnectionStringBuilder(MySql.BaseConnectionString) { Pooling = false }.ConnectionString;
        for (var i = 0; i < Trials; i++)
        {
            await using var connection = new MySqlConnection(physical);
            await connection.OpenAsync();
            await using (var warm = new MySqlCommand("select 1", connection))
                await warm.ExecuteScalarAsync();
            await using var command = new MySqlCommand($"KILL CONNECTION {connection.ServerThread}", admin);
            command.ExecuteNonQuery();
            var start = Stopwatch.GetTimestamp();
            var state = MySqlDialect.ProbeSocket(connection);
            atReturn[state] = atReturn.GetValueOrDefault(state) + 1;
            var (signal, closed, first) = SpinUntilClosed(MySqlDialect, connection, start);
            firstStates[first] = firstStates.GetValueOrDefault(first) + 1;
            toSignal.Add(signal);
            toClosed.Add(closed);
        }
        Console.WriteLine($"MariaDB, probe at the moment KILL returned: {string.Join(", ", atReturn.Select(p => $"{p.Key} x{p.Value}"))}; first non-quiet state: {string.Join(", ", firstStates.Select(p => $"{p.Key} x{p.Value}"))}");
        Console.WriteLine($"MariaDB, from the return to the socket reading non-quiet: {Describe(toSignal)}");
        Console.WriteLine($"MariaDB, from the return to the socket reading Closed: {Describe(toClosed)}");
    }

    // ------------------------------------------------------------------------------------------------ cost

    [TestMethod]
    public async Task ProbeCost_OnAQuietConnection_AndTheClocks_Measured()
    {
        await using var pg = await OpenPgAsync();
        await using var my = new MySqlConnection(new MySqlConnectionStringBuilder(MySql.BaseConnectionString) { Pooling = false }.ConnectionString);
        await my.OpenAsync();
        const int Iterations = 200_000;
        const int Runs = 7;

        static string Measure(string what, Func<long> body)
        {
            var perCall = new List<double>();
            for (var run = 0; run < Runs; run++)
            {
                var start = Stopwatch.GetTimestamp();
                long sink = 0;
                for (var i = 0; i < Iterations; i++)
                    sink += body();
                perCall.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds / Iterations);
                GC.KeepAlive(sink);
            }
            perCall.Sort();
            return $"{what}: min {perCall[0]:F1} ns, median {perCall[Runs / 2]:F1} ns, max {perCall[^1]:F1} ns per call ({Runs} runs of {Iterations:N0})";
        }

        var quiet = 0;
        Console.WriteLine(Measure("PostgreSQL ProbeSocket (Quiet)", () => { quiet += PgDialect.ProbeSocket(pg) == SocketState.Quiet ? 1 : 0; return quiet; }));
        Console.WriteLine(Measure("MariaDB ProbeSocket (Quiet)", () => { quiet += MySqlDialect.ProbeSocket(my) == SocketState.Quiet ? 1 : 0; return quiet; }));
        // The raw system calls under the probe, for comparison (the socket taken by plain reflection here).
        var connector = typeof(NpgsqlConnection).GetProperty("Connector", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.GetValue(pg)!;
        var socket = (System.Net.Sockets.Socket)connector.GetType().GetField("_socket", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.GetValue(connector)!;
        Console.WriteLine(Measure("Socket.Poll(0, SelectRead) alone", () => socket.Poll(0, System.Net.Sockets.SelectMode.SelectRead) ? 1 : 0));
        Console.WriteLine(Measure("Socket.Available alone", () => socket.Available));
        Console.WriteLine(Measure("Stopwatch.GetTimestamp", Stopwatch.GetTimestamp));
        Console.WriteLine(Measure("Environment.TickCount64", () => Environment.TickCount64));
        Console.WriteLine(Measure("TimeProvider.System.GetTimestamp", TimeProvider.System.GetTimestamp));
        Assert.AreEqual(Runs * Iterations * 2, quiet, "every probe of a live idle connection read Quiet");
    }

    // ------------------------------------------------------------------------------------------------ FailedBeforeUserCommand

    /// <summary>A physical connection with DISCARD ALL queued to travel with its next command, as Covet leaves it on return.</summary>
    private static async Task<NpgsqlConnection> OpenWithQueuedResetAsync()
    {
        var connection = await OpenPgAsync();
        var pipelining = Providers.Postgres.NpgsqlResetPipelining.For(typeof(NpgsqlConnection));
        Assert.IsNotNull(pipelining);
        Assert.IsTrue(pipelining.TryQueue(connection), "the reset was queued");
        Assert.AreEqual(2, pipelining.PendingResponses(pipelining.ConnectorWithQueuedReset(connection)!));
        return connection;
    }

    [TestMethod]
    public async Task FailedBeforeUserCommand_KillBeforeTheCommand_WithTheResetQueued_IsTrue()
    {
        var trueCount = 0;
        for (var i = 0; i < 20; i++)
        {
            await using var connection = await OpenWithQueuedResetAsync();
            await using (var admin = Pg.OpenAdmin())
            await using (var kill = new NpgsqlCommand($"select pg_terminate_backend({connection.ProcessID}, 10000)", admin))
                Assert.IsTrue((bool)(await kill.ExecuteScalarAsync())!);

            var captured = PgDialect.CaptureBeforeCommand(connection);
            Assert.IsNotNull(captured, "a reset travels with the command: a proof is possible");
            Exception? failure = null;
            try
            {
                await using var command = new NpgsqlCommand("select 1", connection);
                await command.ExecuteScalarAsync();
            }
            catch (Exception e)
            {
                failure = e;
            }
            Assert.IsNotNull(failure, "the command on a terminated connection fails");
            if (i == 0)
                Console.WriteLine($"kill before the command: {failure.GetType().Name} {(failure as PostgresException)?.SqlState} {failure.Message}; pending responses after: " +
                                  Providers.Postgres.NpgsqlResetPipelining.For(typeof(NpgsqlConnection))!.PendingResponses(captured));
            Assert.IsInstanceOfType<PostgresException>(failure, $"the server's FATAL answered the reset: {failure}");
            Assert.AreEqual("57P01", ((PostgresException)failure).SqlState);
            Assert.IsTrue(PgDialect.FailedBeforeUserCommand(captured, failure), "the error answered the queued reset: the command was never read");
            trueCount++;
        }
        Assert.AreEqual(20, trueCount);
    }

    [TestMethod]
    public async Task FailedBeforeUserCommand_KillMidStatement_IsFalse()
    {
        await using var connection = await OpenWithQueuedResetAsync();
        var pid = connection.ProcessID;
        var captured = PgDialect.CaptureBeforeCommand(connection);
        Assert.IsNotNull(captured);
        var running = Task.Run(async () =>
        {
            await using var command = new NpgsqlCommand("select pg_sleep(5)", connection);
            await command.ExecuteScalarAsync();
        });
        await using (var admin = Pg.OpenAdmin())
        {
            await Poll.UntilAsync(async () =>
            {
                await using var check = new NpgsqlCommand($"select count(*) from pg_stat_activity where pid = {pid} and state = 'active' and query like '%pg_sleep%'", admin);
                return (long)(await check.ExecuteScalarAsync())! == 1;
            }, "the statement to be running");
            await using var kill = new NpgsqlCommand($"select pg_terminate_backend({pid}, 10000)", admin);
            Assert.IsTrue((bool)(await kill.ExecuteScalarAsync())!);
        }
        var failure = await Assert.ThrowsAsync<PostgresException>(() => running);
        Assert.AreEqual("57P01", failure.SqlState, "the same error as a kill before the command");
        Assert.IsFalse(PgDialect.FailedBeforeUserCommand(captured, failure), "the statement was read and ran: a retry could run it twice");
    }

    [TestMethod]
    public async Task FailedBeforeUserCommand_WithoutAQueuedReset_IsFalse()
    {
        await using var connection = await OpenPgAsync();
        await using (var admin = Pg.OpenAdmin())
        await using (var kill = new NpgsqlCommand($"select pg_terminate_backend({connection.ProcessID}, 10000)", admin))
            Assert.IsTrue((bool)(await kill.ExecuteScalarAsync())!);
        var captured = PgDialect.CaptureBeforeCommand(connection);
        Assert.IsNull(captured, "nothing travels before the command: nothing to capture");
        var failure = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var command = new NpgsqlCommand("select 1", connection);
            await command.ExecuteScalarAsync();
        });
        Assert.IsFalse(PgDialect.FailedBeforeUserCommand(captured, failure), "nothing travelled before the command: the error cannot be placed before it");
    }

    [TestMethod]
    public async Task FailedBeforeUserCommand_ForAnErrorOfTheCommandItself_IsFalse()
    {
        await using var connection = await OpenWithQueuedResetAsync();
        var captured = PgDialect.CaptureBeforeCommand(connection);
        var failure = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var command = new NpgsqlCommand("select 1/0", connection);
            await command.ExecuteScalarAsync();
        });
        Assert.IsFalse(PgDialect.FailedBeforeUserCommand(captured, failure), "the command's own error came after the reset's answers");
    }
}
