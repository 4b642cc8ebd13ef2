using BenchmarkDotNet.Attributes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

/// <summary>How the application gets its contexts, as in an ASP.NET Core app: one DI scope per request.</summary>
public enum ContextRegistration
{
    /// <summary>
    /// <c>AddDbContext</c>: a new context per scope; its options are built per scope too (EF's default options lifetime
    /// is scoped), so the <c>UseNpgsql(...)</c> / <c>UseCovetPool(...)</c> lambda runs for every request.
    /// </summary>
    AddDbContext,

    /// <summary><c>AddDbContextPool</c>: context instances and their options are reused; each scope rents one.</summary>
    AddDbContextPool,
}

/// <summary>
/// Base of the EF Core benchmarks. Each benchmark case (a process of its own) gets a new PostgreSQL database named
/// <c>covet_efbench_{pid}_{random}</c>, created with <c>EnsureCreated</c> and seeded in the global setup, and dropped
/// in the global cleanup; so nothing is shared between cases and the inserted rows never outlive a case.
/// </summary>
/// <remarks>
/// The two sides of every comparison differ in one call only: <c>UseNpgsql(cs)</c> (Npgsql's own pool; the baseline)
/// versus <c>UseNpgsql(cs).UseCovetPool(o => o.MaxPoolSize = ...)</c>, with the same maximum pool size. The global setup
/// runs the measured operation <see cref="WarmupOperations"/> times, checking each result, and checks that the
/// connections really came from the pool under test: Covet's pool counted the checkouts (or, for the baseline, no Covet
/// pool exists and the context reports none), and the server holds between 1 and <see cref="MaxPoolSize"/> sessions of
/// the database (pooled connections stay open).
/// </remarks>
public abstract class EfBenchmarkBase
{
    /// <summary>Npgsql's <c>Maximum Pool Size</c> and Covet's <c>MaxPoolSize</c>.</summary>
    public const int MaxPoolSize = 20;

    /// <summary>Blogs the query benchmark reads, by id in turn.</summary>
    public const int SeededBlogs = 1000;

    /// <summary>Checked operations run by the global setup (JIT, EF's query and update pipelines, the first physical connect).</summary>
    public const int WarmupOperations = 20;

    private const string ApplicationName = "covet-efbench";

    private string? _baseConnectionString;
    private string? _databaseName;
    private string? _poolName;
    private bool _covet;
    private ServiceProvider? _services;
    private int[] _ids = [];
    private int _nextId;
    private long _inserted;

    [Params(ContextRegistration.AddDbContext, ContextRegistration.AddDbContextPool)]
    public ContextRegistration Contexts { get; set; }

    /// <summary>The measured operation once, with its result checked (used by the global setup's warm-up).</summary>
    protected abstract Task RunOnceAsync();

    // ---------------------------------------------------------------------------------------------
    // Setup

    /// <summary>Creates and seeds this case's database, registers the context (Covet or Npgsql's pool) and warms it up.</summary>
    protected void Setup(bool covet) => SetupAsync(covet).GetAwaiter().GetResult();

    private async Task SetupAsync(bool covet)
    {
        _covet = covet;
        _baseConnectionString = Databases.PostgreSqlConnectionString;
        _databaseName = $"covet_efbench_{Environment.ProcessId}_{Guid.NewGuid().ToString("N")[..8]}";
        _poolName = covet ? $"efbench-{_databaseName}" : null;

        var connectionString = new NpgsqlConnectionStringBuilder(_baseConnectionString)
        {
            Database = _databaseName,
            ApplicationName = ApplicationName,
            Pooling = true,
            MaxPoolSize = MaxPoolSize,
        }.ConnectionString;

        // Schema and seed through an unpooled, plain context: nothing of it stays in either pool.
        var unpooled = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, ApplicationName = ApplicationName + "-setup" }.ConnectionString;
        await using (var context = new BenchContext(new DbContextOptionsBuilder<BenchContext>().UseNpgsql(unpooled).Options))
        {
            if (!await context.Database.EnsureCreatedAsync())
                throw new InvalidOperationException($"EnsureCreated did not create the new database {_databaseName}.");
            var seeded = await context.Database.ExecuteSqlAsync(
                $"insert into \"efbench_blogs\" (\"Name\", \"Rating\") select 'blog ' || g, g % 5 from generate_series(1, {SeededBlogs}) as g");
            if (seeded != SeededBlogs)
                throw new InvalidOperationException($"Seeding inserted {seeded} blogs, expected {SeededBlogs}.");
            _ids = await context.Blogs.OrderBy(b => b.Id).Select(b => b.Id).ToArrayAsync();
            if (_ids.Length != SeededBlogs)
                throw new InvalidOperationException($"Read back {_ids.Length} blog ids, expected {SeededBlogs}.");
        }

        var poolName = _poolName;
        Action<DbContextOptionsBuilder> configure = covet
            ? o => o.UseNpgsql(connectionString).UseCovetPool(p =>
            {
                p.MaxPoolSize = MaxPoolSize;
                p.PoolName = poolName;
            })
            : o => o.UseNpgsql(connectionString);
        var services = new ServiceCollection();
        if (Contexts == ContextRegistration.AddDbContextPool)
            services.AddDbContextPool<BenchContext>(configure);
        else
            services.AddDbContext<BenchContext>(configure);
        _services = services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true, ValidateOnBuild = true });

        for (var i = 0; i < WarmupOperations; i++)
            await RunOnceAsync();

        await VerifyPoolAsync();
        // Let Covet's background session reset of the last warm-up connection finish before the first measured iteration.
        await Task.Delay(50);
    }

    /// <summary>Fails the case unless the warm-up really went through the pool under test.</summary>
    private async Task VerifyPoolAsync()
    {
        bool contextReportsCovet;
        await using (var scope = _services!.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<BenchContext>();
            await context.Database.OpenConnectionAsync();
            contextReportsCovet = context.Database.GetCovetPoolStatistics() is not null;
            await context.Database.CloseConnectionAsync();
        }

        string poolReport;
        if (_covet)
        {
            var pools = CovetPools.GetStatistics(_poolName!);
            if (!contextReportsCovet || pools.Count != 1 || pools[0].Checkouts < WarmupOperations)
                throw new InvalidOperationException(
                    $"UseCovetPool is not in effect: context reports a Covet pool: {contextReportsCovet}; Covet pools named {_poolName}: " +
                    $"{pools.Count}, checkouts {string.Join(",", pools.Select(p => p.Checkouts))} (expected 1 pool, >= {WarmupOperations} checkouts).");
            if (pools[0].MaxPoolSize != MaxPoolSize)
                throw new InvalidOperationException($"Covet's pool has MaxPoolSize {pools[0].MaxPoolSize}, expected {MaxPoolSize}.");
            poolReport = $"covet pool {_poolName}: checkouts={pools[0].Checkouts} created={pools[0].ConnectionsCreated}";
        }
        else
        {
            if (contextReportsCovet)
                throw new InvalidOperationException("The baseline must not use Covet, but its context reports a Covet pool.");
            poolReport = "no Covet pool (Npgsql's own)";
        }

        var sessions = await ServerSessionsAsync();
        if (sessions is < 1 or > MaxPoolSize)
            throw new InvalidOperationException(
                $"The server has {sessions} sessions of {_databaseName} from {ApplicationName} after the warm-up; expected 1..{MaxPoolSize} (pooled connections stay open).");
        Console.WriteLine(
            $"// efbench setup: {(_covet ? "UseCovetPool" : "Npgsql pool")}, {Contexts}, database {_databaseName}: {WarmupOperations} checked warm-up " +
            $"operations, {poolReport}, server sessions={sessions}");
    }

    // ---------------------------------------------------------------------------------------------
    // The measured operations

    /// <summary>New context (a DI scope) → <c>AsNoTracking().Where(b => b.Id == id).FirstOrDefaultAsync()</c> → dispose.</summary>
    protected async Task<Blog> QueryAsync()
    {
        var id = _ids[_nextId];
        if (++_nextId == _ids.Length)
            _nextId = 0;
        await using var scope = _services!.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<BenchContext>();
        var blog = await context.Blogs.AsNoTracking().Where(b => b.Id == id).FirstOrDefaultAsync();
        if (blog is null || blog.Id != id)
            throw new InvalidOperationException($"The query for blog {id} returned {(blog is null ? "no row" : $"blog {blog.Id}")}.");
        return blog;
    }

    /// <summary>New context (a DI scope) → add <paramref name="rows"/> new entries → <c>SaveChangesAsync()</c> → dispose.</summary>
    protected async Task<int> SaveAsync(int rows)
    {
        await using var scope = _services!.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<BenchContext>();
        for (var i = 0; i < rows; i++)
            context.Entries.Add(new Entry { Title = "entry", Value = i });
        var written = await context.SaveChangesAsync();
        if (written != rows)
            throw new InvalidOperationException($"SaveChanges wrote {written} rows, expected {rows}.");
        _inserted += rows;
        return written;
    }

    // ---------------------------------------------------------------------------------------------
    // Cleanup

    /// <summary>
    /// Checks that the table holds exactly the rows the case inserted, prints Covet's pool statistics, disposes the
    /// contexts, clears both pools and drops the case's database.
    /// </summary>
    [GlobalCleanup]
    public void GlobalCleanup() => CleanupAsync().GetAwaiter().GetResult();

    private async Task CleanupAsync()
    {
        if (_databaseName is null)
            return;
        string? failure = null;
        try
        {
            var rows = await CountEntriesAsync();
            Console.WriteLine($"// efbench cleanup: {_databaseName}: efbench_entries holds {rows} rows, inserted by this case {_inserted}");
            if (rows != _inserted)
                failure = $"efbench_entries holds {rows} rows, but this case's SaveChanges calls reported {_inserted}.";

            if (_poolName is not null)
            {
                foreach (var s in CovetPools.GetStatistics(_poolName))
                    Console.WriteLine(
                        $"// covet-stats {_poolName}: total={s.Total} idle={s.Idle} checkouts={s.Checkouts} created={s.ConnectionsCreated} " +
                        $"destroyed={s.ConnectionsDestroyed} connectFailures={s.ConnectionFailures} prePingFailures={s.PrePingFailures} " +
                        $"resetFailures={s.ResetFailures} leaks={s.LeaksDetected} forgotten={s.ForgottenConnections} acquireTimeouts={s.AcquireTimeouts} " +
                        $"acquireP50={s.AcquireP50.TotalMicroseconds:F0}us acquireP99={s.AcquireP99.TotalMicroseconds:F0}us acquireMax={s.AcquireMax.TotalMilliseconds:F1}ms");
            }

            if (_services is not null)
                await _services.DisposeAsync();
            _services = null;
            if (_poolName is not null)
                CovetPools.Clear(_poolName);
            NpgsqlConnection.ClearAllPools();
        }
        finally
        {
            await using var admin = new NpgsqlConnection(AdminConnectionString());
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"drop database if exists \"{_databaseName}\" with (force)", admin);
            await drop.ExecuteNonQueryAsync();
            _databaseName = null;
        }
        if (failure is not null)
            throw new InvalidOperationException(failure);
    }

    // ---------------------------------------------------------------------------------------------
    // Server-side checks, on unpooled connections of their own

    private string AdminConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder(_baseConnectionString)
        {
            Database = database,
            Pooling = false,
            ApplicationName = ApplicationName + "-admin",
            Timeout = 5,
        }.ConnectionString;

    private async Task<long> ServerSessionsAsync()
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select count(*) from pg_stat_activity where datname = @d and application_name = @a", connection);
        command.Parameters.AddWithValue("d", _databaseName!);
        command.Parameters.AddWithValue("a", ApplicationName);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<long> CountEntriesAsync()
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString(_databaseName!));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select count(*) from \"efbench_entries\"", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
