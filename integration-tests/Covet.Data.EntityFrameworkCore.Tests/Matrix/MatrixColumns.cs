using System.Transactions;
using AmbientScope = System.Transactions.TransactionScope;
using Covet.Data.EntityFrameworkCore.Tests.Migrations;
using Covet.Data.EntityFrameworkCore.Tests.Model;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Tests.Matrix;

// The EF Core 10 test project's provider columns; the rows are MatrixTests' (shared with the Pomelo test project).

[TestClass]
public sealed class Postgres : MatrixTests
{
    private protected override ProviderKind Kind => ProviderKind.Postgres;

    private protected override async Task MigrateProviderSpecificAsync()
    {
        // A migration that creates an extension: Npgsql's migrator then reloads the connection's types.
        await using var context = new PgCitextContext(Provider.Options<PgCitextContext>());
        await context.Database.MigrateAsync();
        context.Users.Add(new PgUser { Id = 1, Email = "Someone@Example.org" });
        await context.SaveChangesAsync();
        await using var read = new PgCitextContext(Provider.Options<PgCitextContext>());
        Assert.AreEqual(1, (await read.Users.SingleAsync(u => u.Email == "someone@example.ORG")).Id, "citext compares case-insensitively");
        Assert.AreEqual("Someone@Example.org", (await read.Users.SingleAsync()).Email);
    }

    /// <summary>
    /// Only Npgsql configures type mappings on a data source, so only the PostgreSQL class has this row. EF Npgsql builds
    /// an NpgsqlDataSource for MapEnum; Covet pools over an unpooled copy EF Npgsql builds from the same options (EF's own data
    /// source and connection string are left as configured).
    /// </summary>
    [TestMethod]
    [Description("Data-source-level type mappings: a PostgreSQL enum mapped with MapEnum in UseNpgsql's options")]
    public async Task DataSourceTypeMappings()
    {
        const int max = 3;
        // A new options object for every context, as OnConfiguring builds them: all must reach the one pool.
        DbContextOptions<PgEnumContext> Options() => new DbContextOptionsBuilder<PgEnumContext>()
            .UseNpgsql(Provider.ConnectionString, o => o.MapEnum<Mood>("mood"))
            .UseCovetPool(o =>
            {
                o.PoolName = Provider.DatabaseName;
                o.MaxPoolSize = max;
                o.AcquireTimeout = TimeSpan.FromSeconds(20);
            })
            .Options;

        await using (var context = new PgEnumContext(Options()))
        {
            Assert.IsTrue(await context.Database.EnsureCreatedAsync());
            context.People.AddRange(new PgPerson { Mood = Mood.Happy }, new PgPerson { Mood = Mood.Sad });
            await context.SaveChangesAsync();
        }
        await using (var read = new PgEnumContext(Options()))
        {
            Assert.AreEqual(Mood.Happy, (await read.People.SingleAsync(p => p.Mood == Mood.Happy)).Mood, "an enum parameter and an enum column, read back");
            CollectionAssert.AreEquivalent(new[] { "happy", "sad" },
                await read.Database.SqlQueryRaw<string>("select \"Mood\"::text as \"Value\" from \"People\"").ToListAsync(),
                "stored as the labels of the PostgreSQL enum");

            // The physical connection EF was given is Covet's, made by the data source (its mapping is on it), unpooled by Npgsql.
            await read.Database.OpenConnectionAsync();
            Assert.IsTrue(read.Database.IsCovetConnectionBorrowed());
            var physical = (NpgsqlConnection)read.Database.GetDbConnection();
            Assert.IsFalse(new NpgsqlConnectionStringBuilder(physical.ConnectionString).Pooling, "Npgsql must not pool under Covet");
            await using (var command = new NpgsqlCommand("select @mood::text", physical))
            {
                command.Parameters.Add(new NpgsqlParameter { ParameterName = "mood", Value = Mood.Sad });
                Assert.AreEqual("sad", await command.ExecuteScalarAsync(), "the data source's MapEnum on the physical connection itself");
            }
            await read.Database.CloseConnectionAsync();
        }

        // System.Transactions on connections the data source opens: contexts of one scope share the enlisted session.
        using (new AmbientScope(TransactionScopeAsyncFlowOption.Enabled))
        {
            await using var first = new PgEnumContext(Options());
            first.People.Add(new PgPerson { Mood = Mood.Ok });
            await first.SaveChangesAsync();
            await using var second = new PgEnumContext(Options());
            Assert.AreEqual(1, await second.People.CountAsync(p => p.Mood == Mood.Ok), "the second context sees the uncommitted row: same transaction");
            // no Complete: rolled back
        }

        // Concurrent contexts: never more than MaxPoolSize physical connections.
        var work = Enumerable.Range(0, 12).Select(async i =>
        {
            await using var context = new PgEnumContext(Options());
            context.People.Add(new PgPerson { Mood = i % 2 == 0 ? Mood.Happy : Mood.Sad });
            await context.SaveChangesAsync();
            return await context.People.CountAsync(p => p.Mood == Mood.Happy);
        }).ToList();
        await Task.WhenAll(work);

        await using var last = new PgEnumContext(Options());
        Assert.AreEqual(0, await last.People.CountAsync(p => p.Mood == Mood.Ok), "the scope without Complete rolled back");
        Assert.AreEqual(1 + 6, await last.People.CountAsync(p => p.Mood == Mood.Happy));
        var stats = await AssertNothingInUseAsync(last);
        Assert.HasCount(1, CovetPools.GetStatistics(Provider.DatabaseName), "every context, configured alike, borrowed from one Covet pool");
        Assert.IsGreaterThanOrEqualTo(20L, stats.Checkouts, stats.ToString());
        Assert.IsLessThanOrEqualTo(max, stats.Total, stats.ToString());
        Assert.IsLessThanOrEqualTo(max, (await Provider.ServerConnectionsAsync())!.Value, "the server sees at most MaxPoolSize sessions");

        // Destroying is real: cleared, the sessions end on the server (with Npgsql pooling underneath they would stay).
        last.Database.ClearCovetPool();
        await Poll.UntilAsync(async () => await Provider.ServerConnectionsAsync() == 0, "the server to have no session of the cleared pool");
    }
}

[TestClass]
public sealed class Sqlite : MatrixTests
{
    private protected override ProviderKind Kind => ProviderKind.Sqlite;
}

[TestClass]
public sealed class MySql : MatrixTests
{
    private protected override ProviderKind Kind => ProviderKind.MySql;
}
