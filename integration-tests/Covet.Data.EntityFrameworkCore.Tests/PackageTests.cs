using Covet.Data.EntityFrameworkCore.Tests.Model;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>UseCovetPool itself: configuration errors, pool sharing, and what it leaves alone. On SQLite (no server needed), and on
/// PostgreSQL where the behaviour is Npgsql's (connection callbacks, data sources).</summary>
[TestClass]
public sealed class PackageTests
{
    public TestContext TestContext { get; set; } = null!;

    private readonly List<string> _files = [];

    private string NewDatabase()
    {
        var path = Path.Combine(Path.GetTempPath(), $"covet-ef-pkg-{TestContext.TestName}-{Guid.NewGuid():N}.db");
        _files.Add(path);
        return $"Data Source={path}";
    }

    [TestCleanup]
    public void DeleteFiles()
    {
        SqliteConnection.ClearAllPools();
        CovetPools.ClearAll();
        foreach (var path in _files)
            foreach (var file in Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileName(path) + "*"))
                File.Delete(file);
    }

    [TestMethod]
    public void UseCovetPool_BeforeTheProvider_FailsWithInstructions()
    {
        var options = new DbContextOptionsBuilder<BlogContext>().UseCovetPool().UseSqlite(NewDatabase()).Options;
        // EF validates the options when it builds the context's services, in the constructor.
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => new BlogContext(options));
        StringAssert.Contains(error.Message, "after the database provider's Use* method");
    }

    [TestMethod]
    public void UseCovetPool_WithoutAProvider_FailsWithInstructions()
    {
        var options = new DbContextOptionsBuilder<BlogContext>().UseCovetPool().Options;
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => new BlogContext(options));
        StringAssert.Contains(error.Message, "database provider");
    }

    [TestMethod]
    public void UseCovetPool_OutOfRangeSetting_FailsAtConfiguration()
    {
        var error = Assert.ThrowsExactly<CovetConfigurationException>(() =>
            new DbContextOptionsBuilder<BlogContext>().UseSqlite(NewDatabase()).UseCovetPool(o => o.MaxPoolSize = 0));
        StringAssert.Contains(error.Message, "MaxPoolSize");
    }

    [TestMethod]
    public async Task ContextsConfiguredAlike_ShareOnePool_OthersDoNot()
    {
        var database = NewDatabase();
        DbContextOptions<BlogContext> Options(int max) =>
            new DbContextOptionsBuilder<BlogContext>().UseSqlite(database).UseCovetPool(o => o.MaxPoolSize = max).Options;

        await using (var context = new BlogContext(Options(7)))
            await context.Database.EnsureCreatedAsync();
        for (var i = 0; i < 5; i++)
        {
            await using var context = new BlogContext(Options(7)); // new options object each time, as OnConfiguring does
            await context.Blogs.CountAsync();
        }
        await using var same = new BlogContext(Options(7));
        var shared = same.Database.GetCovetPoolStatistics()!;
        Assert.AreEqual(7, shared.MaxPoolSize);
        Assert.IsGreaterThanOrEqualTo(6L, shared.Checkouts, "every context borrowed from the one pool");

        await using var other = new BlogContext(Options(3));
        Assert.AreEqual(3, other.Database.GetCovetPoolStatistics()!.MaxPoolSize, "different settings: a different pool");
        other.Database.ClearCovetPool();
        same.Database.ClearCovetPool();
    }

    [TestMethod]
    public async Task ConnectionSetByTheApplication_IsLeftAlone()
    {
        var database = NewDatabase();
        await using var context = new BlogContext(new DbContextOptionsBuilder<BlogContext>().UseSqlite(database).UseCovetPool().Options);
        await context.Database.EnsureCreatedAsync();
        Assert.IsGreaterThan(0L, context.Database.GetCovetPoolStatistics()!.Checkouts);

        await using var own = new SqliteConnection(database);
        context.Database.SetDbConnection(own);
        await context.Database.OpenConnectionAsync();
        Assert.AreSame(own, context.Database.GetDbConnection());
        Assert.IsFalse(context.Database.IsCovetConnectionBorrowed());
        Assert.AreEqual(0, await context.Blogs.CountAsync());
        await context.Database.CloseConnectionAsync();
    }

    [TestMethod]
    public async Task NpgsqlConnectionCallbacks_FailLoudlyAtTheFirstOpen()
    {
        // A callback acts when a connection opens; Covet's physical connections are opened from the string alone.
        // (Obsolete in EF Npgsql 10, which points to ConfigureDataSource: a data source, which Covet pools over.)
#pragma warning disable CS0618
        var options = new DbContextOptionsBuilder<BlogContext>()
            .UseNpgsql(PgServer.BaseConnectionString, o => o.RemoteCertificateValidationCallback((_, _, _, _) => true))
            .UseCovetPool()
            .Options;
#pragma warning restore CS0618
        await using var context = new BlogContext(options);
        var error = await Assert.ThrowsExactlyAsync<NotSupportedException>(() => context.Blogs.CountAsync());
        StringAssert.Contains(error.Message, "Callback");
    }

    [TestMethod]
    public async Task UseCovetPool_OnNpgsql_LeavesTheConnectionStringAsWritten()
    {
        // Covet turns Npgsql's pooling off on its own physical connections only: the application's string, and EF's own
        // connection object (opened directly with GetDbConnection().Open(), left alone), keep Npgsql's pool.
        var configured = new NpgsqlConnectionStringBuilder(PgServer.BaseConnectionString) { ApplicationName = "covet-ef-as-written" }.ConnectionString;
        var options = new DbContextOptionsBuilder<BlogContext>().UseNpgsql(configured).UseCovetPool().Options;
        Assert.AreEqual(configured, RelationalOptionsExtension.Extract(options).ConnectionString, "the configured string is not rewritten");

        await using var context = new BlogContext(options);
        Assert.AreEqual(configured, context.Database.GetConnectionString(), "GetConnectionString() returns the string as the application wrote it");
        Assert.IsTrue(new NpgsqlConnectionStringBuilder(context.Database.GetDbConnection().ConnectionString).Pooling, "EF's own connection object pools as configured");

        // Pooled by Covet all the same, on an unpooled physical connection.
        await context.Database.OpenConnectionAsync();
        Assert.IsTrue(context.Database.IsCovetConnectionBorrowed());
        Assert.IsFalse(new NpgsqlConnectionStringBuilder(context.Database.GetDbConnection().ConnectionString).Pooling, "Npgsql must not pool under Covet");
        Assert.AreEqual(1, await context.Database.SqlQueryRaw<int>("select 1 as \"Value\"").SingleAsync());
        await context.Database.CloseConnectionAsync();
        Assert.AreEqual(configured, context.Database.GetConnectionString(), "and still as written after a borrow");
        Assert.IsGreaterThanOrEqualTo(1L, context.Database.GetCovetPoolStatistics()!.Checkouts);

        // An application that opens its own connection from the context's string keeps Npgsql's pool.
        await using (var own = new NpgsqlConnection(context.Database.GetConnectionString()))
        {
            Assert.IsTrue(new NpgsqlConnectionStringBuilder(own.ConnectionString).Pooling);
            await own.OpenAsync();
        }
        context.Database.ClearCovetPool();

        var sqlite = NewDatabase();
        var other = new DbContextOptionsBuilder<BlogContext>().UseSqlite(sqlite).UseCovetPool().Options;
        Assert.AreEqual(sqlite, RelationalOptionsExtension.Extract(other).ConnectionString, "other providers' strings are left as they are");
    }

    [TestMethod]
    public async Task UseCovetPool_OnNpgsqlWithADataSource_LeavesEfsDataSourceAndStringAsWritten()
    {
        // MapEnum makes EF Npgsql build an NpgsqlDataSource: Covet pools over an unpooled copy EF builds from the same
        // options, and EF's data source (what GetConnectionString() shows) stays as configured.
        var configured = new NpgsqlConnectionStringBuilder(PgServer.BaseConnectionString) { ApplicationName = "covet-ef-ds-as-written" }.ConnectionString;
        var withoutCovet = new DbContextOptionsBuilder<BlogContext>().UseNpgsql(configured, o => o.MapEnum<Mood>("mood")).Options;
        var withCovet = new DbContextOptionsBuilder<BlogContext>().UseNpgsql(configured, o => o.MapEnum<Mood>("mood")).UseCovetPool().Options;
        Assert.AreEqual(configured, RelationalOptionsExtension.Extract(withCovet).ConnectionString, "the configured string is not rewritten");

        await using var plain = new BlogContext(withoutCovet);
        await using var context = new BlogContext(withCovet);
        Assert.AreEqual(plain.Database.GetConnectionString(), context.Database.GetConnectionString(), "the same as without UseCovetPool");
        Assert.IsTrue(new NpgsqlConnectionStringBuilder(context.Database.GetConnectionString()).Pooling, "EF's data source pools as configured");

        await context.Database.OpenConnectionAsync();
        Assert.IsTrue(context.Database.IsCovetConnectionBorrowed());
        var physical = (NpgsqlConnection)context.Database.GetDbConnection();
        Assert.IsFalse(new NpgsqlConnectionStringBuilder(physical.ConnectionString).Pooling, "Npgsql must not pool under Covet");
        Assert.AreEqual("covet-ef-ds-as-written", new NpgsqlConnectionStringBuilder(physical.ConnectionString).ApplicationName, "every other keyword kept");
        await context.Database.CloseConnectionAsync();
        Assert.AreEqual(plain.Database.GetConnectionString(), context.Database.GetConnectionString());
        Assert.IsTrue(new NpgsqlConnectionStringBuilder(context.Database.GetDbConnection().ConnectionString).Pooling, "EF's own connection object pools as configured");
        context.Database.ClearCovetPool();
    }

    [TestMethod]
    public async Task NpgsqlConfigureDataSourceTurningPoolingOn_FailsLoudlyNamingIt()
    {
        var options = new DbContextOptionsBuilder<BlogContext>()
            .UseNpgsql(PgServer.BaseConnectionString, o => o.ConfigureDataSource(b => b.ConnectionStringBuilder.Pooling = true))
            .UseCovetPool()
            .Options;
        await using var context = new BlogContext(options);
        var error = await Assert.ThrowsExactlyAsync<NotSupportedException>(() => context.Database.SqlQueryRaw<int>("select 1 as \"Value\"").SingleAsync());
        StringAssert.Contains(error.Message, "ConfigureDataSource");
    }

    [TestMethod]
    public async Task NpgsqlDataSourceWithPasswordProvider_KeepsItsOwnConfigurationError()
    {
        // Only the pooling refusal becomes the NotSupportedException about Pooling=false; other errors keep their message.
        var options = new DbContextOptionsBuilder<BlogContext>()
            .UseNpgsql(PgServer.BaseConnectionString, o => o.MapEnum<Mood>("mood"))
            .UseCovetPool(o => o.PasswordProvider = _ => ValueTask.FromResult("secret"))
            .Options;
        await using var context = new BlogContext(options);
        var error = await Assert.ThrowsExactlyAsync<CovetConfigurationException>(() => context.Database.SqlQueryRaw<int>("select 1 as \"Value\"").SingleAsync());
        Assert.AreEqual(nameof(CovetPoolOptions.PasswordProvider), error.Setting);
    }

    [TestMethod]
    public async Task PoolsOverEfsDataSources_AreDisposedWithEfsServiceProvider()
    {
        // EnableServiceProviderCaching(false): every options object gets its own internal service provider, EF data source
        // and Covet pool. Nothing disposes such a service provider; once it is unreachable, its Covet pools are disposed.
        var name = $"covet-ef-sp-{Guid.NewGuid():N}";
        for (var i = 0; i < 3; i++)
            UseOnceWithItsOwnServiceProvider(name);
        Assert.HasCount(3, CovetPools.GetStatistics(name), "one pool per internal service provider");

        await Poll.UntilAsync(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return CovetPools.GetStatistics(name).Count == 0;
        }, "the pools of the dropped service providers to be disposed");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void UseOnceWithItsOwnServiceProvider(string poolName)
    {
        var options = new DbContextOptionsBuilder<BlogContext>()
            .UseNpgsql(PgServer.BaseConnectionString, o => o.MapEnum<Mood>("mood"))
            .EnableServiceProviderCaching(false)
            .UseCovetPool(o => o.PoolName = poolName)
            .Options;
        using var context = new BlogContext(options);
        Assert.AreEqual(1, context.Database.SqlQueryRaw<int>("select 1 as \"Value\"").Single());
    }

    [TestMethod]
    public async Task NpgsqlDataSourceOfTheApplication_Unpooled_IsPooledByCovetAndShared()
    {
        var password = new NpgsqlConnectionStringBuilder(PgServer.BaseConnectionString).Password;
        await using var npgsql = new NpgsqlDataSourceBuilder(new NpgsqlConnectionStringBuilder(PgServer.BaseConnectionString) { Pooling = false }.ConnectionString).Build();
        DbContextOptions<BlogContext> Options() => new DbContextOptionsBuilder<BlogContext>().UseNpgsql(npgsql).UseCovetPool(o => o.MaxPoolSize = 2).Options;

        for (var i = 0; i < 3; i++)
        {
            await using var context = new BlogContext(Options());
            Assert.AreEqual(1, await context.Database.SqlQueryRaw<int>("select 1 as \"Value\"").SingleAsync());
        }
        await using var last = new BlogContext(Options());
        var stats = last.Database.GetCovetPoolStatistics()!;
        Assert.AreEqual(3L, stats.Checkouts, "every context borrowed from the one pool over the application's data source");
        Assert.AreEqual(1L, stats.ConnectionsCreated, "and reused its physical connection");
        if (!string.IsNullOrEmpty(password))
            Assert.IsFalse(stats.PoolName.Contains(password, StringComparison.Ordinal), "no password in the pool's name");
        last.Database.ClearCovetPool();
    }

    [TestMethod]
    public async Task NpgsqlDataSourceOfTheApplication_Pooling_FailsLoudlyNamingTheSetting()
    {
        var password = new NpgsqlConnectionStringBuilder(PgServer.BaseConnectionString).Password;
        await using var npgsql = NpgsqlDataSource.Create(PgServer.BaseConnectionString); // Npgsql pools by default
        await using var context = new BlogContext(new DbContextOptionsBuilder<BlogContext>().UseNpgsql(npgsql).UseCovetPool().Options);
        var error = await Assert.ThrowsExactlyAsync<NotSupportedException>(() => context.Database.SqlQueryRaw<int>("select 1 as \"Value\"").SingleAsync());
        StringAssert.Contains(error.Message, "Pooling=false");
        if (!string.IsNullOrEmpty(password))
            Assert.IsFalse(error.ToString().Contains(password, StringComparison.Ordinal), "no password in the error");
        Assert.IsNull(context.Database.GetCovetPoolStatistics(), "not pooled by Covet");
    }

    [TestMethod]
    public async Task SetDbConnectionWhileBorrowed_GivesTheBorrowBack()
    {
        var database = NewDatabase();
        await using var context = new BlogContext(new DbContextOptionsBuilder<BlogContext>().UseSqlite(database).UseCovetPool().Options);
        await context.Database.EnsureCreatedAsync();
        await context.Database.OpenConnectionAsync();
        Assert.IsTrue(context.Database.IsCovetConnectionBorrowed());
        var stats = context.Database.GetCovetPoolStatistics()!;
        Assert.AreEqual(1, stats.InUse);

        await using var own = new SqliteConnection(database);
        context.Database.SetDbConnection(own); // EF forgets the connection it had open; its next open is the app's own
        Assert.AreEqual(0, await context.Blogs.CountAsync());
        Assert.AreSame(own, context.Database.GetDbConnection());
        await Poll.UntilAsync(() => !context.Database.IsCovetConnectionBorrowed(), "the borrow to be given back");
        context.Database.ClearCovetPool();
    }
}
