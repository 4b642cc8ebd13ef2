using Covet.Data;
using Covet.Data.AspNetCore;
using Covet.Data.Dashboard;
using Microsoft.Data.Sqlite;

// Usage: dotnet run --project examples/Covet.Data.Dashboard [-- --urls http://127.0.0.1:5080]
// then open http://127.0.0.1:5080/covet
var builder = WebApplication.CreateBuilder(args);
if (string.IsNullOrEmpty(builder.Configuration["urls"]))   // --urls, ASPNETCORE_URLS or appsettings win
    builder.WebHost.UseUrls("http://127.0.0.1:5080");

var database = Path.Combine(Path.GetTempPath(), $"covet-dashboard-{Environment.ProcessId}.db");
var connectionString = new SqliteConnectionStringBuilder { DataSource = database, Pooling = false }.ToString();
await SampleDatabase.CreateAsync(connectionString);

// Two pools: a roomy one for short queries, and a small one for slow reports, where callers queue.
var orders = CovetDataSource.Create(SqliteFactory.Instance, connectionString, new CovetPoolOptions
{
    PoolName = "orders (SQLite)",
    MaxPoolSize = 8,
    LeakDetectionThreshold = TimeSpan.FromSeconds(10),
    MaxCheckoutDuration = TimeSpan.Zero,   // keep the deliberate leak on show instead of reclaiming it after 5 minutes
});
var reports = CovetDataSource.Create(SqliteFactory.Instance, connectionString, new CovetPoolOptions
{
    PoolName = "reports (SQLite)",
    MaxPoolSize = 3,
    AcquireTimeout = TimeSpan.FromSeconds(5),
});
builder.Services.AddSingleton(new SyntheticLoad(orders, reports));
builder.Services.AddHostedService(sp => sp.GetRequiredService<SyntheticLoad>());

// Demo only: every local visitor may act. A real application requires a role or a claim here.
builder.Services.AddAuthorization(o => o.AddPolicy("covet-dashboard-demo", p => p.RequireAssertion(_ => true)));

var app = builder.Build();
app.MapGet("/", () => Results.Redirect("/covet"));
app.MapCovetDashboard("/covet", o => o.ActionsPolicy = "covet-dashboard-demo");

// The deliberate leak: a connection opened and never closed. The dashboard's holders table shows its stack trace.
Leak.OpenAndForget(orders);

app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"Covet dashboard: {string.Join(", ", app.Urls.Select(u => u.TrimEnd('/') + "/covet"))} (Ctrl-C to stop)"));
try
{
    await app.RunAsync();
}
finally
{
    Leak.Release();
    await orders.DisposeAsync();
    await reports.DisposeAsync();
    File.Delete(database);
}
