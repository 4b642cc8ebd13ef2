using System.Net;
using System.Text.Json;

namespace Covet.Data.AspNetCore.Tests;

[TestClass]
public sealed class DashboardApiTests
{
    [TestMethod]
    public async Task Pools_ListsEveryPoolWithItsStateCountsAndLatencies()
    {
        await using var pool = new SqlitePool("api-list", maxPoolSize: 7);
        pool.WarmIdle(2);
        pool.OpenAndLeak();
        await using var factory = new DashboardFactory();
        var client = new DashboardClient(factory.CreateClient());

        var list = await client.GetJsonAsync("/covet/api/pools");

        Assert.IsFalse(list.GetProperty("actionsEnabled").GetBoolean(), "read-only by default");
        Assert.AreEqual(1000, list.GetProperty("sampleIntervalMs").GetInt32());
        Assert.AreEqual(600, list.GetProperty("historyLength").GetInt32());
        var p = list.GetProperty("pools").EnumerateArray().Single(e => e.GetProperty("name").GetString() == pool.Name);
        Assert.AreEqual(pool.Id, p.GetProperty("id").GetInt64());
        Assert.AreEqual("Running", p.GetProperty("state").GetString());
        Assert.AreEqual("Closed", p.GetProperty("breakerState").GetString());
        Assert.AreEqual(2, p.GetProperty("total").GetInt32());
        Assert.AreEqual(1, p.GetProperty("inUse").GetInt32());
        Assert.AreEqual(1, p.GetProperty("idle").GetInt32());
        Assert.AreEqual(0, p.GetProperty("waiting").GetInt32());
        Assert.AreEqual(7, p.GetProperty("maxPoolSize").GetInt32());
        Assert.AreEqual(3, p.GetProperty("checkouts").GetInt64());
        Assert.AreEqual(2, p.GetProperty("connectionsCreated").GetInt64());
        Assert.AreEqual(0, p.GetProperty("connectionFailures").GetInt64());
        Assert.AreEqual(100.0 / 7, p.GetProperty("utilizationPercent").GetDouble(), 0.1);
        foreach (var latency in (string[])["acquireP50Ms", "acquireP95Ms", "acquireP99Ms", "acquireMaxMs", "useP50Ms", "useP95Ms", "useP99Ms"])
            Assert.IsTrue(p.GetProperty(latency).GetDouble() >= 0, latency);
        Assert.IsFalse(p.TryGetProperty("holders", out _), "the list leaves holders to the pool's own endpoint");
    }

    [TestMethod]
    public async Task Pool_ShowsTheLongestHoldersWithTheStackTraceOfTheCodeThatOpenedThem()
    {
        await using var pool = new SqlitePool("api-holders");
        var opener = Environment.CurrentManagedThreadId;   // before any await moves the test to another thread
        pool.OpenAndLeak();
        await using var factory = new DashboardFactory();
        var client = new DashboardClient(factory.CreateClient());

        var detail = await client.GetJsonAsync($"/covet/api/pools/{pool.Id}");
        var holders = await client.GetJsonAsync($"/covet/api/pools/{pool.Id}/holders");

        Assert.AreEqual(pool.Name, detail.GetProperty("name").GetString());
        foreach (var list in new[] { detail.GetProperty("holders"), holders })
        {
            var holder = list.EnumerateArray().Single();
            StringAssert.Contains(holder.GetProperty("stackTrace").GetString(), "SqlitePool.OpenAndLeak");
            StringAssert.Contains(holder.GetProperty("stackTrace").GetString(), nameof(Pool_ShowsTheLongestHoldersWithTheStackTraceOfTheCodeThatOpenedThem));
            Assert.AreEqual(opener, holder.GetProperty("threadId").GetInt32());
            Assert.IsTrue(holder.GetProperty("heldMs").GetDouble() >= 0);
        }
        Assert.AreEqual(HttpStatusCode.NotFound, (await client.GetAsync("/covet/api/pools/987654321")).Status);
        Assert.AreEqual(HttpStatusCode.NotFound, (await client.GetAsync("/covet/api/pools/987654321/holders")).Status);
    }

    [TestMethod]
    public async Task History_TakesOneSamplePerInterval_KeepsOnlyTheLastOnes_AndAnswersSince()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z"));
        await using var pool = new SqlitePool("api-history");
        pool.OpenAndLeak();
        await using var factory = new DashboardFactory(o => { o.TimeProvider = clock; o.HistoryLength = 5; });
        var client = new DashboardClient(factory.CreateClient());   // starts the host: the sampler takes its first sample
        var url = $"/covet/api/pools/{pool.Id}/history";

        var first = await client.GetJsonAsync(url);
        Assert.AreEqual(1, first.GetProperty("t").GetArrayLength());
        Assert.AreEqual(1, first.GetProperty("inUse")[0].GetInt32());
        Assert.AreEqual(5, first.GetProperty("capacity").GetInt32());

        pool.OpenAndLeak();
        clock.Advance(TimeSpan.FromSeconds(1));
        var second = await client.GetJsonAsync(url);
        CollectionAssert.AreEqual(new[] { 1, 2 }, second.GetProperty("inUse").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        var t = second.GetProperty("t").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.AreEqual(1000, t[1] - t[0]);

        for (var i = 0; i < 6; i++)
            clock.Advance(TimeSpan.FromSeconds(1));
        var bounded = await client.GetJsonAsync(url);
        var times = bounded.GetProperty("t").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.AreEqual(5, times.Length, "bounded by HistoryLength");
        Assert.AreEqual(clock.GetUtcNow().ToUnixTimeMilliseconds(), times[^1]);

        var since = await client.GetJsonAsync($"{url}?since={times[^2]}");
        CollectionAssert.AreEqual(new[] { times[^1] }, since.GetProperty("t").EnumerateArray().Select(e => e.GetInt64()).ToArray());
    }

    [TestMethod]
    [DataRow("203.0.113.7")]
    [DataRow("10.1.2.3")]
    [DataRow("none")]
    public async Task ARequestFromAnotherMachine_IsRefused_ByDefault(string remote)
    {
        await using var pool = new SqlitePool("api-remote");
        await using var factory = new DashboardFactory(o => o.ActionsPolicy = TestProgram.AdminPolicy);
        var client = new DashboardClient(factory.CreateClient()) { User = "alice", Role = "admin", RemoteIp = remote };
        var token = await new DashboardClient(factory.CreateClient()) { User = "alice", Role = "admin" }.PageTokenAsync();

        foreach (var path in (string[])["/covet", "/covet/assets/dashboard.js", "/covet/api/pools", $"/covet/api/pools/{pool.Id}", $"/covet/api/pools/{pool.Id}/history"])
        {
            var (status, body) = await client.GetAsync(path);
            Assert.AreEqual(HttpStatusCode.Forbidden, status, path);
            StringAssert.Contains(body, "local requests only");
        }
        Assert.AreEqual(HttpStatusCode.Forbidden, (await client.PostAsync($"/covet/api/pools/{pool.Id}/clear", token)).Status);
        Assert.AreEqual(HttpStatusCode.OK, (await new DashboardClient(factory.CreateClient()) { RemoteIp = "::1" }.GetAsync("/covet/api/pools")).Status, "IPv6 loopback is local");
    }

    [TestMethod]
    public async Task ARequestFromAnotherMachine_IsServed_WhenTheAppAllowsIt()
    {
        await using var factory = new DashboardFactory(o => o.AllowRemoteRequests = true);
        var client = new DashboardClient(factory.CreateClient()) { RemoteIp = "203.0.113.7" };
        Assert.AreEqual(HttpStatusCode.OK, (await client.GetAsync("/covet/api/pools")).Status);
    }

    [TestMethod]
    public async Task ReadOnlyByDefault_EveryActionIsRefused_AndThePageOffersNone()
    {
        await using var pool = new SqlitePool("api-readonly");
        pool.WarmIdle(2);
        await using var factory = new DashboardFactory();
        var client = DashboardClient.Admin(factory);

        Assert.AreEqual("", await client.PageTokenAsync());
        StringAssert.Contains((await client.GetAsync("/covet")).Body, "<meta name=\"covet-actions\" content=\"false\">");
        foreach (var action in (string[])["clear", "pause", "resume", "drain", "resize"])
        {
            var (status, body) = await client.PostAsync($"/covet/api/pools/{pool.Id}/{action}", token: "anything", body: "{\"maxPoolSize\":3}");
            Assert.AreEqual(HttpStatusCode.Forbidden, status, action);
            StringAssert.Contains(body, "read-only");
        }
        Assert.AreEqual(2, pool.DataSource.GetStatistics().Idle, "nothing was cleared");
    }

    [TestMethod]
    public async Task Clear_NeedsTheNamedPolicy_AndTheUsersOwnToken_FromThisSite()
    {
        await using var pool = new SqlitePool("api-clear");
        pool.WarmIdle(3);
        await using var factory = new DashboardFactory(o => o.ActionsPolicy = TestProgram.AdminPolicy);
        var admin = DashboardClient.Admin(factory);
        var url = $"/covet/api/pools/{pool.Id}/clear";
        var token = await admin.PageTokenAsync();
        Assert.AreNotEqual("", token);
        var bobsToken = await new DashboardClient(factory.CreateClient()) { User = "bob", Role = "admin" }.PageTokenAsync();
        Assert.AreNotEqual(token, bobsToken, "tokens are per user");

        Assert.AreEqual(HttpStatusCode.Unauthorized, (await new DashboardClient(factory.CreateClient()).PostAsync(url, token)).Status, "anonymous");
        Assert.AreEqual(HttpStatusCode.Forbidden, (await new DashboardClient(factory.CreateClient()) { User = "carol", Role = "viewer" }.PostAsync(url, token)).Status, "not in the policy");
        Assert.AreEqual("", await new DashboardClient(factory.CreateClient()) { User = "carol", Role = "viewer" }.PageTokenAsync(), "no token for a user outside the policy");
        var (missing, missingBody) = await admin.PostAsync(url);
        Assert.AreEqual(HttpStatusCode.Forbidden, missing);
        StringAssert.Contains(missingBody, "missing X-Covet-Dashboard-Token");
        Assert.AreEqual(HttpStatusCode.Forbidden, (await admin.PostAsync(url, bobsToken)).Status, "another user's token");
        Assert.AreEqual(HttpStatusCode.Forbidden, (await admin.PostAsync(url, token, origin: "https://evil.example")).Status, "cross-origin");
        Assert.AreEqual(3, pool.DataSource.GetStatistics().Idle, "no refused request cleared anything");

        var (status, body) = await admin.PostAsync(url, token, origin: "http://localhost");
        Assert.AreEqual(HttpStatusCode.OK, status, body);
        var answer = JsonDocument.Parse(body).RootElement;
        Assert.AreEqual("clear", answer.GetProperty("action").GetString());
        Assert.AreEqual(1, answer.GetProperty("poolsAffected").GetInt32());
        var stats = pool.DataSource.GetStatistics();
        Assert.AreEqual(0, stats.Idle);
        Assert.AreEqual(3, stats.ConnectionsDestroyed);
        Assert.AreEqual(HttpStatusCode.NotFound, (await admin.PostAsync("/covet/api/pools/987654321/clear", token)).Status);
    }

    [TestMethod]
    public async Task PauseResumeDrain_ActOnTheRealPool()
    {
        await using var pool = new SqlitePool("api-live-real");
        await using var factory = new DashboardFactory(o => o.ActionsPolicy = TestProgram.AdminPolicy);
        var admin = DashboardClient.Admin(factory);
        var token = await admin.PageTokenAsync();
        var url = $"/covet/api/pools/{pool.Id}";

        var (paused, pausedBody) = await admin.PostAsync(url + "/pause", token);
        Assert.AreEqual(HttpStatusCode.OK, paused, pausedBody);
        Assert.AreEqual(CovetPoolState.Paused, pool.DataSource.State);
        Assert.AreEqual("Paused", (await admin.GetJsonAsync(url)).GetProperty("state").GetString());
        Assert.AreEqual(HttpStatusCode.OK, (await admin.PostAsync(url + "/resume", token)).Status);
        Assert.AreEqual(CovetPoolState.Running, pool.DataSource.State);
        Assert.AreEqual("Running", (await admin.GetJsonAsync(url)).GetProperty("state").GetString());

        pool.WarmIdle(3);
        pool.OpenAndLeak(); // takes one of the three: two idle, one borrowed
        var (drained, drainBody) = await admin.PostAsync(url + "/drain?timeoutSeconds=0.2", token);
        Assert.AreEqual(HttpStatusCode.OK, drained, drainBody);
        var answer = JsonDocument.Parse(drainBody).RootElement;
        Assert.AreEqual(2, answer.GetProperty("closed").GetInt32(), drainBody);
        Assert.AreEqual(1, answer.GetProperty("stragglers").GetArrayLength(), drainBody);
        StringAssert.Contains(drainBody, nameof(SqlitePool.OpenAndLeak));
        Assert.AreEqual("Paused", (await admin.GetJsonAsync(url)).GetProperty("state").GetString());
        Assert.AreEqual(1, pool.DataSource.GetStatistics().Total, "only the straggler is left");

        Assert.AreEqual(HttpStatusCode.NotFound, (await admin.PostAsync("/covet/api/pools/987654321/pause", token)).Status);
        pool.DataSource.Resume();
    }

    [TestMethod]
    public async Task Resize_ReconfiguresTheRealPool_AndARefusedSizeIs400NamingTheSetting()
    {
        await using var pool = new SqlitePool("api-resize", maxPoolSize: 5);
        await using var factory = new DashboardFactory(o => o.ActionsPolicy = TestProgram.AdminPolicy);
        var admin = DashboardClient.Admin(factory);
        var token = await admin.PageTokenAsync();
        var url = $"/covet/api/pools/{pool.Id}";
        pool.WarmIdle(4);

        // Shrink below the idle count: the surplus idle connections close at once.
        var (status, body) = await admin.PostAsync(url + "/resize", token, body: "{\"minPoolSize\":1,\"maxPoolSize\":2}");
        Assert.AreEqual(HttpStatusCode.OK, status, body);
        Assert.AreEqual(1, JsonDocument.Parse(body).RootElement.GetProperty("poolsAffected").GetInt32(), body);
        var stats = pool.DataSource.GetStatistics();
        Assert.AreEqual(2, stats.MaxPoolSize);
        Assert.AreEqual(1, stats.MinPoolSize);
        Assert.AreEqual(2, stats.Total, "the surplus idle connections were closed");
        Assert.AreEqual(2, pool.DataSource.Options.MaxPoolSize);
        var detail = await admin.GetJsonAsync(url);
        Assert.AreEqual(2, detail.GetProperty("maxPoolSize").GetInt32());
        Assert.AreEqual(1, detail.GetProperty("minPoolSize").GetInt32());
        Assert.AreEqual(pool.Name, pool.DataSource.PoolName, "the rest of the pool's options are kept");
        Assert.AreEqual(CovetLeakStackTraces.Always, pool.DataSource.Options.LeakStackTraces);

        // Grow while a caller waits at the old maximum: the raised maximum serves it.
        using var first = pool.DataSource.OpenConnection();
        using var second = pool.DataSource.OpenConnection();
        var waiting = pool.DataSource.OpenConnectionAsync().AsTask();
        while (pool.DataSource.GetStatistics().Waiting == 0)
            await Task.Delay(5);
        Assert.AreEqual(HttpStatusCode.OK, (await admin.PostAsync(url + "/resize", token, body: "{\"maxPoolSize\":6}")).Status);
        await using (var third = await waiting.WaitAsync(TimeSpan.FromSeconds(10)))
            Assert.AreEqual(System.Data.ConnectionState.Open, third.State);
        Assert.AreEqual(6, pool.DataSource.GetStatistics().MaxPoolSize);
        Assert.AreEqual(1, pool.DataSource.GetStatistics().MinPoolSize, "minPoolSize omitted: kept");

        // Refused sizes: 400 with the core's message naming the setting, and nothing changed.
        foreach (var (json, setting) in new[] { ("{\"minPoolSize\":5,\"maxPoolSize\":2}", "MinPoolSize"), ("{\"minPoolSize\":0,\"maxPoolSize\":0}", "MaxPoolSize"), ("{\"minPoolSize\":-1,\"maxPoolSize\":3}", "MinPoolSize") })
        {
            var (bad, badBody) = await admin.PostAsync(url + "/resize", token, body: json);
            Assert.AreEqual(HttpStatusCode.BadRequest, bad, badBody);
            StringAssert.Contains(JsonDocument.Parse(badBody).RootElement.GetProperty("error").GetString(), setting, badBody);
            Assert.AreEqual(6, pool.DataSource.GetStatistics().MaxPoolSize, json);
            Assert.AreEqual(1, pool.DataSource.GetStatistics().MinPoolSize, json);
        }
        Assert.AreEqual(HttpStatusCode.BadRequest, (await admin.PostAsync(url + "/resize", token, body: "not json")).Status);
        Assert.AreEqual(HttpStatusCode.NotFound, (await admin.PostAsync("/covet/api/pools/987654321/resize", token, body: "{\"maxPoolSize\":3}")).Status);
    }

    [TestMethod]
    public async Task LiveOperations_GoThroughTheDashboardsPoolSource()
    {
        await using var pool = new SqlitePool("api-live");
        var source = new LiveOperationsDouble();
        await using var factory = new DashboardFactory(o => o.ActionsPolicy = TestProgram.AdminPolicy, source);
        var admin = DashboardClient.Admin(factory);
        var token = await admin.PageTokenAsync();
        var url = $"/covet/api/pools/{pool.Id}";

        Assert.AreEqual(HttpStatusCode.OK, (await admin.PostAsync(url + "/pause", token)).Status);
        Assert.AreEqual("Paused", (await admin.GetJsonAsync(url)).GetProperty("state").GetString());
        Assert.AreEqual(HttpStatusCode.OK, (await admin.PostAsync(url + "/resume", token)).Status);
        Assert.AreEqual("Running", (await admin.GetJsonAsync(url)).GetProperty("state").GetString());
        var (drained, drainBody) = await admin.PostAsync(url + "/drain?timeoutSeconds=7", token);
        Assert.AreEqual(HttpStatusCode.OK, drained, drainBody);
        Assert.AreEqual(2, JsonDocument.Parse(drainBody).RootElement.GetProperty("closed").GetInt32());
        Assert.AreEqual(HttpStatusCode.BadRequest, (await admin.PostAsync(url + "/drain?timeoutSeconds=0", token)).Status);
        Assert.AreEqual(HttpStatusCode.OK, (await admin.PostAsync(url + "/resize", token, body: "{\"minPoolSize\":1,\"maxPoolSize\":9}")).Status);
        var (bad, badBody) = await admin.PostAsync(url + "/resize", token, body: "{\"minPoolSize\":5,\"maxPoolSize\":2}");
        Assert.AreEqual(HttpStatusCode.BadRequest, bad);
        StringAssert.Contains(badBody, "MinPoolSize");

        CollectionAssert.AreEqual(new[] { $"pause {pool.Id}", $"resume {pool.Id}", $"drain {pool.Id} 7", $"resize {pool.Id} 1..9" }, source.Calls.ToArray());
    }

    [TestMethod]
    public async Task NoPasswordOrParameterValue_AppearsAnywhereOnTheDashboard()
    {
        const string password = "Sup3r-Secret-Pw";
        const string parameterValue = "secret-parameter-value-42";
        await using var npgsql = CovetDataSource.Create(Npgsql.NpgsqlFactory.Instance,
            $"Host=127.0.0.1;Port=1;Database=covet_secret_test;Username=covet;Password={password}", new CovetPoolOptions());
        await using var pool = new SqlitePool("api-secrets");
        var held = pool.OpenAndLeak();
        using (var command = held.CreateCommand())
        {
            command.CommandText = "SELECT $p";
            var p = command.CreateParameter();
            p.ParameterName = "$p";
            p.Value = parameterValue;
            command.Parameters.Add(p);
            Assert.AreEqual(parameterValue, command.ExecuteScalar());
        }
        await using var factory = new DashboardFactory(o => o.ActionsPolicy = TestProgram.AdminPolicy);
        var admin = DashboardClient.Admin(factory);

        var bodies = new List<string>();
        foreach (var path in (string[])["/covet", "/covet/assets/dashboard.js", "/covet/assets/dashboard.css", "/covet/api/pools"])
            bodies.Add((await admin.GetAsync(path)).Body);
        var ids = (await admin.GetJsonAsync("/covet/api/pools")).GetProperty("pools").EnumerateArray().Select(p => p.GetProperty("id").GetInt64()).ToList();
        CollectionAssert.Contains(ids, npgsql.GetStatistics().PoolId);
        foreach (var id in ids)
            foreach (var suffix in (string[])["", "/holders", "/history"])
                bodies.Add((await admin.GetAsync($"/covet/api/pools/{id}{suffix}")).Body);

        var all = string.Join("\n", bodies);
        StringAssert.Contains(all, npgsql.PoolName, "the secret-bearing pool is on the dashboard");
        StringAssert.Contains(all, "SqlitePool.OpenAndLeak", "the holder is on the dashboard");
        Assert.IsFalse(all.Contains(password, StringComparison.OrdinalIgnoreCase), "password shown");
        Assert.IsFalse(all.Contains("Password=", StringComparison.OrdinalIgnoreCase), "connection string shown");
        Assert.IsFalse(all.Contains(parameterValue, StringComparison.OrdinalIgnoreCase), "parameter value shown");
    }

    [TestMethod]
    public async Task TheApi_KeepsItsShape_WhenTheApplicationChangesItsJsonOptions()
    {
        await using var pool = new SqlitePool("api-json");
        await using var factory = new DashboardFactory(services: s => s.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = null));
        var client = new DashboardClient(factory.CreateClient());

        var list = await client.GetJsonAsync("/covet/api/pools");

        Assert.IsTrue(list.TryGetProperty("pools", out var pools), "camelCase, as the page expects");
        Assert.IsTrue(pools.EnumerateArray().Any(p => p.GetProperty("name").GetString() == pool.Name));
    }

    [TestMethod]
    public async Task TheReturnedGroup_TakesTheApplicationsConventions_ForEveryPageAndApiCall()
    {
        await using var factory = new DashboardFactory();

        foreach (var path in (string[])["/ops/covet", "/ops/covet/assets/dashboard.js", "/ops/covet/api/pools"])
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, (await new DashboardClient(factory.CreateClient()).GetAsync(path)).Status, path);
            Assert.AreEqual(HttpStatusCode.OK, (await DashboardClient.Admin(factory).GetAsync(path)).Status, path);
        }
        StringAssert.Contains((await DashboardClient.Admin(factory).GetAsync("/ops/covet")).Body, "src=\"/ops/covet/assets/dashboard.js\"");
    }
}
