using System.Transactions;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class AmbientTransactionTests
{
    [TestMethod]
    public void TransactionScope_OpensInTheSameScope_ShareOnePhysicalConnection()
    {
        using var pool = TestPool.Create(o => o.MaxPoolSize = 5);
        FakeDbConnection first, second;
        using (var scope = new TransactionScope())
        {
            using (var a = pool.Open())
            {
                first = (FakeDbConnection)a.UnderlyingConnection;
                Assert.IsNotNull(first.EnlistedTransaction, "the physical connection should be enlisted explicitly");
            }
            Assert.AreEqual(0, pool.Stats.Idle, "parked for the transaction, not idle");
            using (var b = pool.Open())
                second = (FakeDbConnection)b.UnderlyingConnection;
            scope.Complete();
        }

        Assert.AreSame(first, second);
        Assert.AreEqual(1, pool.Server.TotalOpened);
        Assert.AreEqual(1, pool.Stats.Idle, "back in the pool once the transaction completed");
        Assert.AreEqual(0, pool.Stats.InUse);
    }

    [TestMethod]
    public void TransactionScope_OutsideTheScope_OtherCallersDoNotGetTheEnlistedConnection()
    {
        using var pool = TestPool.Create(o => o.MaxPoolSize = 5);
        using var scope = new TransactionScope();
        FakeDbConnection enlisted;
        using (var a = pool.Open())
            enlisted = (FakeDbConnection)a.UnderlyingConnection;

        FakeDbConnection other;
        using (new TransactionScope(TransactionScopeOption.Suppress))
        using (var b = pool.Open())
            other = (FakeDbConnection)b.UnderlyingConnection;

        Assert.AreNotSame(enlisted, other, "a connection enlisted in a live transaction was lent to someone else");
        scope.Complete();
    }

    [TestMethod]
    public void TransactionScope_RolledBack_ConnectionIsStillReturned()
    {
        using var pool = TestPool.Create();
        using (new TransactionScope())
        using (var connection = pool.Open())
            connection.Exec("SET a = 1");

        Assert.AreEqual(0, pool.Stats.InUse);
        Assert.AreEqual(pool.Stats.Total, pool.Server.OpenConnections);
    }
}
