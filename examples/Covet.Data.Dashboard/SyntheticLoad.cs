using System.Data.Common;

namespace Covet.Data.Dashboard;

/// <summary>
/// Workers that borrow connections the way a web application does: many short queries on the orders pool, a few slow
/// reports on the small reports pool (so its callers queue), and now and then a burst.
/// </summary>
internal sealed class SyntheticLoad(CovetDataSource orders, CovetDataSource reports) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var workers = new List<Task>();
        for (var i = 0; i < 4; i++)
        {
            var worker = i;
            workers.Add(Task.Run(() => OrdersWorkerAsync(worker, stoppingToken), stoppingToken));
        }
        for (var i = 0; i < 5; i++)
            workers.Add(Task.Run(() => ReportsWorkerAsync(stoppingToken), stoppingToken));
        return Task.WhenAll(workers).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private async Task OrdersWorkerAsync(int worker, CancellationToken ct)
    {
        var random = new Random(worker);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                // For 3 s in every 20, each worker sends three requests at once: a burst the chart shows.
                var burst = DateTime.UtcNow.Second % 20 < 3 ? 3 : 1;
                await Task.WhenAll(Enumerable.Range(0, burst).Select(_ => OneOrderAsync(random, ct)));
                await Task.Delay(random.Next(20, 120), ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (DbException)
            {
                // A timeout under a burst is part of the show; keep going.
            }
        }
    }

    private async Task OneOrderAsync(Random random, CancellationToken ct)
    {
        await using var connection = orders.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT sum(amount) FROM orders WHERE customer = $customer";
        var p = command.CreateParameter();
        p.ParameterName = "$customer";
        p.Value = "customer " + random.Next(97);
        command.Parameters.Add(p);
        await command.ExecuteScalarAsync(ct);
        await Task.Delay(random.Next(5, 60), ct);   // the request's own work while holding the connection
    }

    private async Task ReportsWorkerAsync(CancellationToken ct)
    {
        var random = new Random();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = reports.CreateConnection();
                await connection.OpenAsync(ct);
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT customer, count(*), avg(amount) FROM orders GROUP BY customer ORDER BY 3 DESC";
                await using (var reader = await command.ExecuteReaderAsync(ct))
                    while (await reader.ReadAsync(ct)) { }
                await Task.Delay(random.Next(200, 900), ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (DbException)
            {
            }
            await Task.Delay(random.Next(50, 400), ct).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
